#!/usr/bin/env bash
# fleet.sh: zeolite servers on one PostgreSQL database beside one server and
# beside the Python ZEO server, in one run (issue 13, "Speed"). Setups:
#   one      one zeolite server on a database of its own (--postgresql)
#   two      two zeolite servers, A and B, on one database
#            (--postgresql-shared), the bench's clients split between them
#            (`zeolite bench --split`)
#   python   the Python ZEO server, runzeo on FileStorage as compare.sh runs
#            it, when there is one
#   standby  (--standby) A on the primary, B reading from a streaming hot
#            standby (--postgresql-read); loads all go to B, commits split
# Workloads, each against every setup in turn (so that all see the same
# background load): load (--clients loaders), commit (--committers, 10
# objects a transaction) and lag (`zeolite bench --workload lag`: one
# committer on A, --watchers watchers on B; one and python: on the one
# server), with commits one after the other, then paced (lag-paced,
# --lag-rate commits a second: servers the bench does not keep busy). The
# lag of a commit runs from the moment A's tpc_finish reply reaches the
# committer to the moment a watcher receives its invalidateTransaction
# (goal for two: p99 < 10 ms).
#
# usage: bench/fleet.sh [--duration SECONDS] [--clients N] [--committers N]
#                       [--watchers N] [--lag-rate N] [--pg-dir DIR | --pg-host DIR]
#                       [--standby [--standby-dir DIR]] [--no-python] [--unix]
#                       [--json FILE]
#   --duration S   timed seconds of each run (default 5)
#   --clients N    load clients (default 16); --committers N commit clients
#                  (default 8); --watchers N lag watchers (default 4)
#   --lag-rate N   commits a second of lag-paced (default 100)
#   --pg-dir DIR   the throwaway cluster's folder (default /tmp/zbp), made
#                  with test/pg/cluster.sh (fsync off) and removed at the end
#   --pg-host DIR  use the running cluster whose socket is in DIR instead:
#                  databases are made there and dropped at the end
#   --standby      add the standby setup, its standby in --standby-dir
#                  (default /tmp/zbs), removed at the end; needs a zeolite
#                  whose serve knows --postgresql-read
#   --no-python    leave the Python server out
#   --unix         servers on Unix sockets, not TCP on 127.0.0.1
#   --json FILE    also write the results to FILE as one JSON object
# env:   ZEOLITE   zeolite executable (default: build/src/tools/zeolite)
#        RUNZEO    Python runzeo command (default: /work/venv/bin/runzeo, or
#                  "$ZEO_PY -m ZEO.runzeo" when ZEO_PY is set); if none works,
#                  the python setup is skipped with a message.
# Server CPU per operation is user+system time (/proc/PID/stat, every thread
# and child process) across the whole bench run, untimed setup included,
# divided by the run's operations (for lag: its commits). "zeolite" sums the
# setup's zeolite servers (runzeo for python); "pg" the PostgreSQL clusters'
# processes (the primary's, and the standby's for standby: all of them, so
# the bench should be their only user). The exit status is 1 when a run
# failed.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ZEOLITE=${ZEOLITE:-$here/../build/src/tools/zeolite}
CLUSTER=$here/../test/pg/cluster.sh
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
duration=5
clients=16
committers=8
watchers=4
lag_rate=100
pg_dir=/tmp/zbp
pg_host=""
standby=""
sb_dir=/tmp/zbs
python=yes
transport=tcp
json_out=""
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2;;
    --clients) clients=$2; shift 2;;
    --committers) committers=$2; shift 2;;
    --watchers) watchers=$2; shift 2;;
    --lag-rate) lag_rate=$2; shift 2;;
    --pg-dir) pg_dir=$2; shift 2;;
    --pg-host) pg_host=$2; shift 2;;
    --standby) standby=yes; shift;;
    --standby-dir) sb_dir=$2; shift 2;;
    --no-python) python=""; shift;;
    --unix) transport=unix; shift;;
    --json) json_out=$2; shift 2;;
    -h|--help) sed -n '2,50p' "$0"; exit 0;;
    *) echo "fleet.sh: unknown argument $1" >&2; exit 2;;
  esac
done

need_zeolite fleet.sh
if ! "$ZEOLITE" bench --help | grep -q -- --split; then
  echo "fleet.sh: $ZEOLITE bench has no --split and --watch (an older zeolite)" >&2
  exit 2
fi
default_runzeo
if [ -n "$python" ] && { [ -z "$RUNZEO" ] || ! $RUNZEO --help >/dev/null 2>&1; }; then
  echo "fleet.sh: no Python ZEO server found (set RUNZEO or ZEO_PY); python skipped" >&2
  python=""
fi
if [ -n "$standby" ] && ! "$ZEOLITE" serve --help | grep -q -- --postgresql-read; then
  echo "fleet.sh: this zeolite's serve has no --postgresql-read (reads from a standby" \
    "have not landed): standby skipped" >&2
  standby=""
fi

tmp=$(TMPDIR=/tmp mktemp -d)   # short: Unix socket paths live in it
own_cluster=""
sb_up=""
dbs=()
declare -A pid addr
# shellcheck disable=SC2317 # run by the trap
cleanup() {
  local rc=$? k d
  for k in "${!pid[@]}"; do kill "${pid[$k]}" 2>/dev/null || true; done
  for k in "${!pid[@]}"; do wait "${pid[$k]}" 2>/dev/null || true; done
  # A sanitizer build's report may only reach a server's log.
  for k in "$tmp"/*.log; do
    if [ -f "$k" ] && grep -q -E "Sanitizer|runtime error" "$k"; then
      echo "fleet.sh: sanitizer report in $(basename "$k"):" >&2
      grep -m 5 -E "Sanitizer|runtime error" "$k" >&2
      rc=1
    fi
  done
  [ -z "$sb_up" ] || bash "$CLUSTER" stop "$sb_dir" >/dev/null 2>&1 || true
  if [ -n "$own_cluster" ]; then
    bash "$CLUSTER" stop "$pg_dir" >/dev/null 2>&1 || true
  else
    for d in "${dbs[@]}"; do
      sql "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
    done
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM   # through cleanup, which stops what was started

sql() { # sql STATEMENT [HOST]: run it as postgres, unaligned output
  psql -h "${2:-$pg_host}" -U postgres -d postgres -tA -q -v ON_ERROR_STOP=1 -c "$1"
}

uri() { # uri DB [HOST]
  echo "postgresql:///$1?host=${2:-$pg_host}&user=postgres"
}

# postmaster HOST: the pid of the cluster whose socket is in HOST (its
# checkpointer's parent, which also works for a cluster made elsewhere)
postmaster() {
  local c
  c=$(sql "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'" "$1") || return 1
  awk '{print $4}' "/proc/$c/stat" 2>/dev/null
}

# ---- the databases and servers ----------------------------------------------

if [ -z "$pg_host" ]; then
  bash "$CLUSTER" start "$pg_dir" >/dev/null
  own_cluster=yes
  pg_host=$pg_dir
fi
pg_root=$(postmaster "$pg_host") || pg_root=""
[ -n "$pg_root" ] || echo "fleet.sh: the cluster's processes are not on this machine:" \
  "pg cpu not measured" >&2
sb_root=""

newdb() { # newdb NAME: db, a fresh database zbf_NAME_PID, dropped at the end
  db=zbf_$1_$$
  sql "CREATE DATABASE $db" >/dev/null
  dbs+=("$db")
}

# serve NAME ARGS...: a zeolite server (or, NAME py, runzeo) in the
# background at a new address; 0 once it accepts connections
serve() {
  local name=$1 a
  shift
  if [ "$transport" = unix ]; then
    a=$tmp/$name.sock
  else
    a=127.0.0.1:$(free_port) || { echo "fleet.sh: no free port" >&2; return 1; }
  fi
  if [ "$name" = py ]; then
    mkdir -p "$tmp/py"
    cat >"$tmp/py/zeo.conf" <<EOF
<zeo>
  address $a
  client-conflict-resolution true
</zeo>
<blobstorage 1>
  blob-dir $tmp/py/blobs
  <filestorage>
    path $tmp/py/Data.fs
  </filestorage>
</blobstorage>
EOF
    $RUNZEO -C "$tmp/py/zeo.conf" >"$tmp/$name.log" 2>&1 &
  else
    "$ZEOLITE" serve -a "$a" "$@" >"$tmp/$name.log" 2>&1 &
  fi
  pid[$name]=$!
  addr[$name]=$a
  if ! wait_accepting "$a" "${pid[$name]}"; then
    echo "fleet.sh: server $name did not start:" >&2
    tail -5 "$tmp/$name.log" >&2 || true
    return 1
  fi
}

setups=(one two)
newdb one
serve one_a --postgresql "$(uri "$db")"
newdb two
serve two_a --postgresql-shared "$(uri "$db")"
serve two_b --postgresql-shared "$(uri "$db")"
if [ -n "$python" ] && serve py; then setups+=(python); fi
if [ -n "$standby" ]; then
  newdb sb
  serve sb_a --postgresql-shared "$(uri "$db")"   # makes the schema on the primary
  if bash "$CLUSTER" standby "$sb_dir" --from "$pg_host" >/dev/null; then
    sb_up=yes
    sb_root=$(postmaster "$sb_dir") || sb_root=""
    if serve sb_b --postgresql-shared "$(uri "$db")" --postgresql-read "$(uri "$db" "$sb_dir")"
    then
      setups+=(standby)
      sb_db=$db
    fi
  fi
fi

# ---- the runs ---------------------------------------------------------------

declare -A servers first second
servers[one]="one_a"; first[one]=one_a; second[one]=""
servers[two]="two_a two_b"; first[two]=two_a; second[two]=two_b
servers[python]="py"; first[python]=py; second[python]=""
servers[standby]="sb_a sb_b"; first[standby]=sb_a; second[standby]=sb_b

field() { # field JSON NAME: a number or a string of a flat JSON object
  sed -n 's/.*"'"$2"'": "\{0,1\}\([^",}]*\).*/\1/p' <<<"$1"
}

ticks() { # ticks PID...: the CPU ticks of these processes and their children
  if [ $# -eq 0 ]; then echo 0; else cpu_ticks "$@"; fi
}

pg_pids() { # pg_pids SETUP: the postmasters whose work a setup's runs make
  case $1 in
    python) ;;
    standby) echo "$pg_root $sb_root";;
    *) echo "$pg_root";;
  esac
}

server_pids() { # server_pids SETUP
  local n
  for n in ${servers[$1]}; do echo "${pid[$n]}"; done
}

standby_reads() { # standby_reads: rows the standby returned for the standby database
  sql "SELECT tup_returned + tup_fetched FROM pg_stat_database WHERE datname = '$sb_db'" \
    "$sb_dir" 2>/dev/null || echo ""
}

bench_args() { # bench_args SETUP WORKLOAD: zeolite bench's arguments
  local a=${addr[${first[$1]}]} b=""
  [ -z "${second[$1]}" ] || b=${addr[${second[$1]}]}
  case $2 in
    load)
      if [ "$1" = standby ]; then echo "$b --workload load --clients $clients"
      elif [ -n "$b" ]; then echo "$a --split $b --workload load --clients $clients"
      else echo "$a --workload load --clients $clients"; fi;;
    commit)
      echo "$a ${b:+--split $b} --workload commit --clients $committers --objects-per-txn 10";;
    lag)
      echo "$a ${b:+--watch $b} --workload lag --clients $watchers";;
    lag-paced)
      echo "$a ${b:+--watch $b} --workload lag --clients $watchers --rate $lag_rate";;
  esac
}

declare -A res
failed=0
run_one() { # run_one SETUP WORKLOAD: one bench run into res[SETUP,WORKLOAD]
  local s=$1 w=$2 out z0 z1 p0 p1 r0="" r1="" err=$tmp/$1-$2.err zl pg extra
  local -a spids ppids
  read -r -a spids <<<"$(server_pids "$s" | tr '\n' ' ')"
  read -r -a ppids <<<"$(pg_pids "$s")"
  z0=$(ticks "${spids[@]}"); p0=$(ticks "${ppids[@]}")
  [ "$s" != standby ] || r0=$(standby_reads)
  # shellcheck disable=SC2046
  out=$("$ZEOLITE" bench $(bench_args "$s" "$w") --duration "$duration" --json \
    2>"$err" | tail -1) || out=""
  z1=$(ticks "${spids[@]}"); p1=$(ticks "${ppids[@]}")
  [ "$s" != standby ] || r1=$(standby_reads)
  if [ -z "$out" ]; then
    echo "fleet.sh: $s $w failed: $(tail -1 "$err")" >&2
    failed=1
    return 0
  fi
  zl=$(awk -v t=$((z1 - z0)) -v hz="$hz" -v n="$(field "$out" ops)" \
    'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "null" }')
  pg=null
  if [ ${#ppids[@]} -gt 0 ] && [ -n "${ppids[0]}" ]; then
    pg=$(awk -v t=$((p1 - p0)) -v hz="$hz" -v n="$(field "$out" ops)" \
      'BEGIN { if (n > 0) printf "%.1f", t * 1e6 / hz / n; else print "null" }')
  fi
  extra=""
  if [ -n "$r0" ] && [ -n "$r1" ]; then extra=", \"standby_rows_read\": $((r1 - r0))"; fi
  res[$s,$w]="${out%\}}, \"run\": \"$w\", \"setup\": \"$s\", \"zeolite_cpu_us_per_op\": $zl, \"pg_cpu_us_per_op\": $pg$extra}"
}

load_start=$(loadavg)
t_start=$SECONDS
runs=(load commit lag lag-paced)
for w in "${runs[@]}"; do
  for s in "${setups[@]}"; do run_one "$s" "$w"; done
done
load_end=$(loadavg)

# ---- the report -------------------------------------------------------------

num() { # num VALUE: VALUE, or - when empty or null
  if [ -z "$1" ] || [ "$1" = null ]; then echo -; else echo "$1"; fi
}

sum_cpu() { # sum_cpu JSON: zeolite + pg CPU per op
  awk -v z="$(field "$1" zeolite_cpu_us_per_op)" -v p="$(field "$1" pg_cpu_us_per_op)" \
    'BEGIN { if (z == "" || z == "null") print "-"; else printf "%.1f", z + (p == "null" ? 0 : p) }'
}

describe() { # describe SETUP: what the setup is, in a few words
  case $1 in
    one) echo "one zeolite, pg";;
    two) echo "two zeolite, pg shared";;
    python) echo "python, FileStorage";;
    standby) echo "two, B on the standby";;
  esac
}

where="TCP 127.0.0.1"
[ "$transport" = tcp ] || where="Unix sockets"
echo "== fleet.sh: ${duration}s a run, $where, PostgreSQL at $pg_host (cluster.sh: fsync off)"
echo "load average (1/5/15 min) before: $load_start, after: $load_end; $((SECONDS - t_start)) s"
printf "%-24s %-8s %8s %10s %8s %8s %10s %10s %10s\n" setup workload clients ops/s \
  p50us p99us "zl us/op" "pg us/op" "all us/op"
for w in load commit; do
  for s in "${setups[@]}"; do
    j=${res[$s,$w]:-}
    printf "%-24s %-8s %8s %10s %8s %8s %10s %10s %10s\n" "$(describe "$s")" "$w" \
      "$(num "$(field "$j" clients)")" "$(num "$(field "$j" ops_per_s)")" \
      "$(num "$(field "$j" p50_us)")" "$(num "$(field "$j" p99_us)")" \
      "$(num "$(field "$j" zeolite_cpu_us_per_op)")" "$(num "$(field "$j" pg_cpu_us_per_op)")" \
      "$(sum_cpu "$j")"
  done
done
if [ -n "${res[standby,load]:-}" ]; then
  echo "standby: its loads read $(num "$(field "${res[standby,load]}" standby_rows_read)")" \
    "rows on the standby"
fi
echo
echo "invalidation lag: from the committer's tpc_finish reply to a watcher's invalidateTransaction"
printf "%-24s %-7s %-10s %8s %10s %8s %8s %8s %8s %8s %6s %7s\n" setup path run watchers \
  commits/s count p50us p90us p99us maxus early missing
for w in lag lag-paced; do
  for s in "${setups[@]}"; do
    j=${res[$s,$w]:-}
    path="A -> A"
    [ -z "${second[$s]}" ] || path="A -> B"
    printf "%-24s %-7s %-10s %8s %10s %8s %8s %8s %8s %8s %6s %7s\n" "$(describe "$s")" \
      "$path" "$w" "$(num "$(field "$j" watchers)")" "$(num "$(field "$j" ops_per_s)")" \
      "$(num "$(field "$j" lag_count)")" "$(num "$(field "$j" lag_p50_us)")" \
      "$(num "$(field "$j" lag_p90_us)")" "$(num "$(field "$j" lag_p99_us)")" \
      "$(num "$(field "$j" lag_max_us)")" "$(num "$(field "$j" lag_early)")" \
      "$(num "$(field "$j" lag_missing)")"
  done
done
echo "goal two zeolite lag p99 < 10000 us: $(num "$(field "${res[two,lag]:-}" lag_p99_us)") us" \
  "(commits one after the other), $(num "$(field "${res[two,lag-paced]:-}" lag_p99_us)") us" \
  "(at $lag_rate a second)"

if [ -n "$json_out" ]; then
  {
    printf '{"duration_s": %s, "transport": "%s", "loadavg_before": "%s", "loadavg_after": "%s", ' \
      "$duration" "$transport" "$load_start" "$load_end"
    printf '"setups": [%s], "runs": [' "$(printf '"%s", ' "${setups[@]}" | sed 's/, $//')"
    sep=""
    for w in "${runs[@]}"; do
      for s in "${setups[@]}"; do
        [ -n "${res[$s,$w]:-}" ] || continue
        printf '%s%s' "$sep" "${res[$s,$w]}"
        sep=", "
      done
    done
    printf ']}\n'
  } >"$json_out"
fi
exit "$failed"
