#!/usr/bin/env bash
# compare.sh: run every `zeolite bench` workload against a zeolite server and
# against the Python ZEO server, same machine, same run, and print the
# results side by side with ratios (zeolite / Python). The load workloads
# also run against bench/limit's zl_limit (a bare epoll ZEO server: the
# machine's ceiling), beside zl_pingpong's bare round trips of the same
# shape, and zeolite's loads are printed as a fraction of the limit.
#
# usage: bench/compare.sh [--duration SECONDS] [--encoding Z|M|both] [--only W1,W2]
#                         [--repeat N]  (N runs of each; the median one is shown)
#                         [--unix]      (both servers on Unix sockets, not TCP)
#                         [--postgresql CONNINFO]  (zeolite on PostgreSQL too)
# env:   ZEOLITE   zeolite executable (default: build/src/tools/zeolite)
#        LIMIT     bench/limit directory with zl_limit and zl_pingpong (default:
#                  build/bench/limit); without them the limit block is skipped.
#        RUNZEO    Python runzeo command (default: /work/venv/bin/runzeo, or
#                  "$ZEO_PY -m ZEO.runzeo" when ZEO_PY is set); if none works,
#                  the Python column is skipped with a message.
# Both servers run at once, each workload goes to one then the other right
# away (so that both see the same background load), with a blob directory;
# zeolite runs with fsync on, in its default mode, and runzeo in
# client-conflict-resolution mode, but for the counter workloads (hot
# BTrees.Length and OOBucket objects), which a third server, runzeo in its
# default mode, answers: both servers then resolve those conflicts
# themselves.
# Server CPU per operation is the server process's user+system time (all its
# threads and child processes) across the whole bench run, untimed setup
# included, divided by the run's operation count. Bytes written are the
# server processes' /proc/PID/io write_bytes (what they made dirty in the page
# cache, counted per folio: a 4 KB write into a large folio counts the folio)
# and wchar (bytes handed to write calls, replies included) over the same span.
# With --repeat N, each workload's runs alternate between the servers (N
# rounds), so that the fraction of the limit compares runs made side by side.
# --postgresql CONNINFO (libpq keyword=value pairs without dbname, such as
# 'host=/run/postgresql user=postgres', a role that may create databases)
# adds a third server: zeolite serving a fresh database made there (dropped at
# the end), fsync on, synchronous_commit on; its server CPU counts the
# PostgreSQL cluster's processes too (all of them: the bench should be the
# cluster's only user).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ZEOLITE=${ZEOLITE:-$here/../build/src/tools/zeolite}
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
LIMIT=${LIMIT:-$here/../build/bench/limit}
duration=10
repeat=1
encodings=Z
only=""
transport=tcp
pg_conninfo=""
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2;;
    --encoding) encodings=$2; [ "$encodings" = both ] && encodings="Z M"; shift 2;;
    --only) only=$2; shift 2;;
    --repeat) repeat=$2; shift 2;;
    --unix) transport=unix; shift;;
    --postgresql) pg_conninfo=$2; shift 2;;
    -h|--help) sed -n '2,39p' "$0"; exit 0;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2;;
  esac
done

need_zeolite compare.sh
default_runzeo

# label|workload and flags: the goals are judged on load at 16 clients and
# commit of 10 objects by 8 and by 16 committers; load-pipelined shows loads with 8
# requests in flight per connection (prefetch-style).
workloads=(
  "load|load --clients 16"
  "load-pipelined|load --clients 16 --in-flight 8"
  "cold|cold --clients 4"
  "commit|commit --clients 8 --objects-per-txn 10"
  "commit-16|commit --clients 16 --objects-per-txn 10"
  "commit-100|commit --clients 8 --objects-per-txn 100 --object-size 300"
  "commit-1000|commit --clients 2 --objects-per-txn 1000 --object-size 300"
  "mixed|mixed --clients 16"
  "conflict|conflict --clients 4 --objects-per-txn 2"
  "large|large --clients 4"
  "blob|blob --clients 2"
  "counter|counter --clients 4"
  "counter-16|counter --clients 16"
)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zeolite-compare-XXXXXX")
declare -A pid addr
cleanup() {
  local k
  for k in "${!pid[@]}"; do
    kill "${pid[$k]}" 2>/dev/null || true
    wait "${pid[$k]}" 2>/dev/null || true
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

# io_bytes PID FIELD: /proc/PID/io FIELD (write_bytes, wchar) summed over PID
# and every process under it.
io_bytes() {
  local p total=0 v
  for p in $1 $(pgrep -P "$1" 2>/dev/null); do
    v=$(awk -v f="$2:" '$1 == f {print $2}' "/proc/$p/io" 2>/dev/null) || continue
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

stop_server() { # stop_server KIND
  if [ -n "${pid[$1]:-}" ]; then
    kill "${pid[$1]}" 2>/dev/null || true
    wait "${pid[$1]}" 2>/dev/null || true
    unset "pid[$1]"
  fi
  if [ "$1" = pg ] && [ -n "${pg_db:-}" ]; then
    psql -q "$pg_conninfo dbname=postgres" -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null || true
    pg_db=""
  fi
}

# pg_database ENC: a new database for the pg server (pg_db), and the pid of
# the cluster's postmaster (pg_root), whose processes' CPU counts as the
# server's.
pg_database() {
  local backend
  pg_db=zl_bench_$$_${1,,}   # lower case: SQL folds unquoted names
  psql -q "$pg_conninfo dbname=postgres" -c "CREATE DATABASE $pg_db" >/dev/null || return 1
  # The checkpointer lives as long as the cluster: its parent is the postmaster.
  backend=$(psql -tA "$pg_conninfo dbname=$pg_db" \
    -c "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'") || return 1
  pg_root=$(awk '{print $4}' "/proc/$backend/stat" 2>/dev/null) || pg_root=""
  [ -n "$pg_root" ] || echo "compare.sh: the cluster's processes are not on this machine:" \
    "pg server CPU counts zeolite only" >&2
}

# start_server KIND ENC: a fresh database in $tmp/KIND-ENC; 0 once it listens.
# KIND: zeolite, limit, python (client-conflict-resolution) or python-default.
start_server() {
  local kind=$1 enc=$2 dir=$tmp/$1-$2 mp="" a ccr=true
  if [ "$transport" = unix ]; then
    a=$dir/server.sock
    # sun_path holds 108 bytes with the terminating NUL.
    if [ ${#a} -gt 107 ]; then
      echo "compare.sh: socket path $a is too long (set TMPDIR)" >&2
      return 1
    fi
  else
    a=127.0.0.1:$(free_port) || { echo "compare.sh: no free port" >&2; return 1; }
  fi
  mkdir -p "$dir"
  if [ "$kind" = zeolite ]; then
    [ "$enc" = M ] && mp=--msgpack
    "$ZEOLITE" serve -a "$a" -f "$dir/db" $mp >"$dir/server.log" 2>&1 &
  elif [ "$kind" = pg ]; then
    [ "$enc" = M ] && mp=--msgpack
    pg_database "$enc" || { echo "compare.sh: no PostgreSQL database for the pg server" >&2; return 1; }
    "$ZEOLITE" serve -a "$a" --postgresql "$pg_conninfo dbname=$pg_db" $mp \
      >"$dir/server.log" 2>&1 &
  elif [ "$kind" = limit ]; then
    [ "$enc" = M ] && mp=--msgpack
    "$LIMIT/zl_limit" -a "$a" $mp >"$dir/server.log" 2>&1 &
  else
    [ "$enc" = M ] && mp="msgpack true"
    [ "$kind" = python-default ] && ccr=false
    cat >"$dir/zeo.conf" <<EOF
<zeo>
  address $a
  client-conflict-resolution $ccr
  $mp
</zeo>
<blobstorage 1>
  blob-dir $dir/blobs
  <filestorage>
    path $dir/Data.fs
  </filestorage>
</blobstorage>
EOF
    $RUNZEO -C "$dir/zeo.conf" >"$dir/server.log" 2>&1 &
  fi
  pid[$kind]=$!
  addr[$kind]=$a
  if ! wait_accepting "$a" "${pid[$kind]}"; then
    echo "compare.sh: $kind server did not start:" >&2
    tail -5 "$dir/server.log" >&2 || true
    stop_server "$kind"
    return 1
  fi
}

field() { # field JSON NAME
  jq -r ".$2 // empty" <<<"$1" 2>/dev/null || true
}

declare -A res runs load_start

# server_ticks KIND PID: the server's CPU ticks, with its PostgreSQL
# cluster's for the pg server
server_ticks() {
  if [ "$1" = pg ] && [ -n "${pg_root:-}" ]; then
    echo $(($(cpu_ticks "$2") + $(cpu_ticks "$pg_root")))
  else
    cpu_ticks "$2"
  fi
}

# measured KIND ENC NAME CMD...: run CMD (which prints a JSON line last),
# add the server's CPU per operation to it and keep it in runs[]
measured() {
  local kind=$1 enc=$2 name=$3 out t0 t1 b0=0 b1=0 c0=0 c1=0 srv=${pid[$1]:-}
  local err=$tmp/bench-$kind-$enc-$name.err
  shift 3
  t0=0; [ -n "$srv" ] && t0=$(server_ticks "$kind" "$srv")
  [ -n "$srv" ] && b0=$(io_bytes "$srv" write_bytes) && c0=$(io_bytes "$srv" wchar)
  out=$("$@" 2>"$err" | tail -1) || out=""
  t1=0; [ -n "$srv" ] && t1=$(server_ticks "$kind" "$srv")
  [ -n "$srv" ] && b1=$(io_bytes "$srv" write_bytes) && c1=$(io_bytes "$srv" wchar)
  if [ -z "$out" ]; then
    echo "compare.sh: $kind $name failed: $(tail -1 "$err")" >&2
    return 0
  fi
  # zl_pingpong measures the CPU of the server it forks itself.
  [ -n "$srv" ] && out=$(jq -c --argjson t $((t1 - t0)) --argjson hz "$hz" \
    --argjson wb $((b1 - b0)) --argjson wc $((c1 - c0)) \
    '. + {server_cpu_us_per_op: (if .ops > 0 then $t * 1e6 / $hz / .ops else null end),
          server_write_bytes_per_op: (if .ops > 0 then $wb / .ops else null end),
          server_wchar_per_op: (if .ops > 0 then $wc / .ops else null end)}' \
    <<<"$out")
  runs[$kind,$enc,$name]+="$out"$'\n'
}

# bench_one KIND ENC LABEL|FLAGS: one `zeolite bench` run into runs[]
bench_one() {
  local kind=$1 enc=$2 w=$3
  # shellcheck disable=SC2086
  measured "$kind" "$enc" "${w%%|*}" "$ZEOLITE" bench "${addr[$kind]}" --workload ${w#*|} \
    --duration "$duration" --json
}

# bare_one KIND ENC: zl_pingpong's bare client against KIND's server (its
# object 1, made by the load workload's setup); KIND pingpong: bare round
# trips with zl_pingpong's own server
bare_one() {
  local kind=$1 enc=$2 u=()
  [ "$transport" = unix ] && u=(--unix)
  if [ "$kind" = pingpong ]; then
    measured pingpong "$enc" bare "$LIMIT/zl_pingpong" --clients 16 --duration "$duration" \
      "${u[@]}" --json
  else
    measured "$kind" "$enc" bare "$LIMIT/zl_pingpong" --connect "${addr[$kind]}" --clients 16 \
      --duration "$duration" --encoding "$enc" --oid 1 --json
  fi
}

# median KIND ENC NAME: the run of median throughput into res[]
median() {
  local key=ops_per_s
  [ -n "${runs[$1,$2,$3]:-}" ] || return 0
  if [[ $3 == large || $3 == blob ]]; then key=mb_per_s; fi
  res[$1,$2,$3]=$(printf '%s' "${runs[$1,$2,$3]}" |
    jq -s -c "sort_by(.$key) | .[(length - 1) / 2 | floor]")
}

ratio() { # ratio A B
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.1fx", a / b }'
}

cpu() { # cpu JSON: server CPU microseconds per operation, one decimal
  awk -v c="$(field "$1" server_cpu_us_per_op)" 'BEGIN { if (c == "") print "-"; else printf "%.1f", c }'
}

fraction() { # fraction A B: A / B with two decimals
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'
}

# The limit block: zeolite's loads x16 (1 in flight) beside the ceiling.
report_limit() { # report_limit ENC
  local enc=$1 row j z l pp lb
  [ -n "${res[limit,$enc,load]:-}" ] || return 0
  echo "-- the limit (bench/limit): load, 16 clients, 1 in flight unless said --"
  printf "%-40s %12s %8s %8s %12s %12s
" "server, client" "loads/s" "p50us" "p99us" \
    "server cpu" "client cpu"
  for row in "pingpong,bare|ping-pong (bare server, bare client)" \
             "limit,bare|zl_limit, bare client" "zeolite,bare|zeolite, bare client" \
             "python,bare|python, bare client" \
             "limit,load|zl_limit, zeolite bench" "zeolite,load|zeolite, zeolite bench" \
             "limit,load-pipelined|zl_limit, zeolite bench, 8 in flight" \
             "zeolite,load-pipelined|zeolite, zeolite bench, 8 in flight"; do
    j=${res[${row%%,*},$enc,$(cut -d'|' -f1 <<<"${row#*,}")]:-}
    [ -n "$j" ] || continue
    printf "%-40s %12s %8s %8s %12s %12s
" "${row#*|}" "$(field "$j" ops_per_s)" \
      "$(field "$j" p50_us)" "$(field "$j" p99_us)" "$(cpu "$j")" \
      "$(field "$j" client_cpu_us_per_op)"
  done
  z=$(field "${res[zeolite,$enc,load]:-}" ops_per_s)
  l=$(field "${res[limit,$enc,load]}" ops_per_s)
  echo "zeolite loads x16 = $(fraction "$z" "$l") of the limit (goal >= 0.95);" \
       "with the bare client: $(fraction "$(field "${res[zeolite,$enc,bare]:-}" ops_per_s)" \
       "$(field "${res[limit,$enc,bare]:-}" ops_per_s)")"
  lb=$(field "${res[limit,$enc,bare]:-}" ops_per_s)
  pp=$(field "${res[pingpong,$enc,bare]:-}" ops_per_s)
  echo "zl_limit / ping-pong, bare clients: $(fraction "$lb" "$pp")" \
       "(well below 1 is a bug in the limit)"
}

report() { # report ENC
  local enc=$1 w name z p zv pv unit suffix where=127.0.0.1
  [ "$transport" = unix ] && where="Unix sockets"
  echo
  echo "== encoding ${enc}5, $where, ${duration}s per workload, median of $repeat =="
  # Both servers and the bench share the machine with whatever else runs:
  # the load average says how much of it they had.
  echo "load average (1/5/15 min) before: ${load_start[$enc]}, after: $(loadavg)"
  # cpu columns: server CPU microseconds per operation; py/z: how much less
  # CPU zeolite spends per operation.
  printf "%-15s %-8s %14s %14s %8s %10s %10s %10s %10s %12s %12s %8s\n" workload clients \
    "zeolite" "python" ratio "z p50us" "z p99us" "py p50us" "py p99us" \
    "z cpu us/op" "py cpu us/op" "py/z cpu"
  for w in "${workloads[@]}"; do
    name=${w%%|*}
    if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
    z=${res[zeolite,$enc,$name]:-}
    p=${res[python,$enc,$name]:-}
    unit=ops_per_s; suffix=""
    if [ "$name" = large ] || [ "$name" = blob ]; then unit=mb_per_s; suffix=" MB/s"; fi
    zv=$(field "$z" $unit); pv=$(field "$p" $unit)
    printf "%-15s %-8s %14s %14s %8s %10s %10s %10s %10s %12s %12s %8s\n" "$name" \
      "$(sed -n 's/.*--clients \([0-9]*\).*/\1/p' <<<"$w")" \
      "${zv:--}$suffix" "${pv:--}$suffix" "$(ratio "$zv" "$pv")" \
      "$(field "$z" p50_us)" "$(field "$z" p99_us)" "$(field "$p" p50_us)" "$(field "$p" p99_us)" \
      "$(cpu "$z")" "$(cpu "$p")" \
      "$(ratio "$(field "$p" server_cpu_us_per_op)" "$(field "$z" server_cpu_us_per_op)")"
    if [ "$name" = conflict ]; then
      printf "%-15s %-8s %14s %14s\n" "" conflicts "$(field "$z" conflicts)" "$(field "$p" conflicts)"
    fi
    if [[ $name == counter* ]]; then
      printf "%-15s %-8s %14s %14s\n" "" "fail+cf" \
        "$(field "$z" errors)+$(field "$z" conflicts)" "$(field "$p" errors)+$(field "$p" conflicts)"
    fi
  done
  z=${res[zeolite,$enc,load]:-}; p=${res[python,$enc,load]:-}
  echo "goal load x16 >= 10x python: $(ratio "$(field "$z" ops_per_s)" "$(field "$p" ops_per_s)")," \
       "zeolite load p99 < 1000 us: $(field "$z" p99_us) us"
  echo "server CPU per load: zeolite $(cpu "$z") us, python $(cpu "$p") us" \
       "($(ratio "$(field "$p" server_cpu_us_per_op)" "$(field "$z" server_cpu_us_per_op)") less)"
  z=${res[zeolite,$enc,commit]:-}; p=${res[python,$enc,commit]:-}
  echo "goal commit K=10 x8 >= 5x python: $(ratio "$(field "$z" ops_per_s)" "$(field "$p" ops_per_s)")"
  z=${res[zeolite,$enc,commit-16]:-}; p=${res[python,$enc,commit-16]:-}
  echo "goal commit K=10 x16 >= 5x python: $(ratio "$(field "$z" ops_per_s)" "$(field "$p" ops_per_s)")"
  for name in counter counter-16; do
    z=${res[zeolite,$enc,$name]:-}; p=${res[python,$enc,$name]:-}
    echo "goal $name >= 2x python (default mode), 0 failed commits:" \
         "$(ratio "$(field "$z" ops_per_s)" "$(field "$p" ops_per_s)"), zeolite $(field "$z" errors) failed"
  done
  report_limit "$enc"
  report_big "$enc"
  report_pg "$enc"
}

# zeolite on PostgreSQL beside zeolite on LMDB and Python (--postgresql).
report_pg() { # report_pg ENC
  local enc=$1 w name g z p
  [ -n "$pg_conninfo" ] || return 0
  echo
  echo "-- zeolite on PostgreSQL (pg cpu: zeolite and the cluster's processes) --"
  printf "%-15s %14s %10s %10s %10s %10s %12s %12s\n" workload "pg" "pg/python" "pg/lmdb" \
    "pg p50us" "pg p99us" "pg cpu us/op" "py cpu us/op"
  for w in "${workloads[@]}"; do
    name=${w%%|*}
    if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
    g=${res[pg,$enc,$name]:-}; z=${res[zeolite,$enc,$name]:-}; p=${res[python,$enc,$name]:-}
    unit=ops_per_s
    if [ "$name" = large ] || [ "$name" = blob ]; then unit=mb_per_s; fi
    printf "%-15s %14s %10s %10s %10s %10s %12s %12s\n" "$name" "$(field "$g" $unit)" \
      "$(ratio "$(field "$g" $unit)" "$(field "$p" $unit)")" \
      "$(ratio "$(field "$g" $unit)" "$(field "$z" $unit)")" \
      "$(field "$g" p50_us)" "$(field "$g" p99_us)" "$(cpu "$g")" "$(cpu "$p")"
  done
  g=${res[pg,$enc,load]:-}; p=${res[python,$enc,load]:-}
  echo "goal pg load x16 >= python: $(ratio "$(field "$g" ops_per_s)" "$(field "$p" ops_per_s)")"
  g=${res[pg,$enc,commit]:-}; p=${res[python,$enc,commit]:-}
  echo "goal pg commit K=10 x8 >= 2x python: $(ratio "$(field "$g" ops_per_s)" "$(field "$p" ops_per_s)")"
}

num() { # num JSON FIELD: the field rounded to an integer
  awk -v v="$(field "$1" "$2")" 'BEGIN { if (v == "") print "-"; else printf "%.0f", v }'
}

per_obj() { # per_obj JSON FIELD [DECIMALS]: the field divided by the objects per transaction
  awk -v v="$(field "$1" "$2")" -v k="$(field "$1" objects_per_txn)" \
    'BEGIN { if (v == "" || k + 0 == 0) print "-"; else printf "%.'"${3:-1}"'f", v / k }'
}

# The commit rows per stored object: server CPU, and bytes written per commit
# and per object beside the record (zb_record: the bench's object size + 33).
report_big() { # report_big ENC
  local enc=$1 name z p k rec any=""
  for name in commit commit-100 commit-1000; do any+=${res[zeolite,$enc,$name]:-}; done
  [ -n "$any" ] || return 0
  echo
  echo "commits per stored object (wb: write_bytes, wc: wchar; rec: the record's bytes)"
  printf "%-12s %5s %9s %9s %6s %9s %9s %11s %11s %8s %8s %8s %8s\n" workload objs \
    "z tx/s" "py tx/s" ratio "z cpu/obj" "py cpu/obj" "z wb/commit" "py wb/commit" \
    "z wb/rec" "py wb/rec" "z wc/rec" "py wc/rec"
  for name in commit commit-100 commit-1000; do
    if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
    z=${res[zeolite,$enc,$name]:-}; p=${res[python,$enc,$name]:-}
    k=$(field "$z" objects_per_txn); rec=$(( $(field "$z" object_size || echo 0) + 33 ))
    printf "%-12s %5s %9s %9s %6s %9s %9s %11s %11s %8s %8s %8s %8s\n" "$name" "${k:--}" \
      "$(field "$z" ops_per_s)" "$(field "$p" ops_per_s)" \
      "$(ratio "$(field "$z" ops_per_s)" "$(field "$p" ops_per_s)")" \
      "$(per_obj "$z" server_cpu_us_per_op 2)" "$(per_obj "$p" server_cpu_us_per_op 2)" \
      "$(num "$z" server_write_bytes_per_op)" "$(num "$p" server_write_bytes_per_op)" \
      "$(ratio "$(per_obj "$z" server_write_bytes_per_op)" "$rec")" \
      "$(ratio "$(per_obj "$p" server_write_bytes_per_op)" "$rec")" \
      "$(ratio "$(per_obj "$z" server_wchar_per_op)" "$rec")" \
      "$(ratio "$(per_obj "$p" server_wchar_per_op)" "$rec")"
  done
  z=${res[zeolite,$enc,commit-1000]:-}; p=${res[python,$enc,commit-1000]:-}
  [ -n "$z" ] || return 0
  rec=$(( $(field "$z" object_size || echo 0) + 33 ))
  echo "goal commit K=1000 x2 >= 4x python: $(ratio "$(field "$z" ops_per_s)" "$(field "$p" ops_per_s)")," \
       "server CPU per object <= 3 us: $(per_obj "$z" server_cpu_us_per_op 2) us," \
       "bytes written per object <= 2x the record: $(ratio "$(per_obj "$z" server_write_bytes_per_op)" "$rec") (write_bytes)"
}

kinds=(zeolite)
[ -n "$pg_conninfo" ] && kinds+=(pg)
if [ -n "$RUNZEO" ] && $RUNZEO --help >/dev/null 2>&1; then
  kinds+=(python)
else
  echo "compare.sh: no Python ZEO server found (set RUNZEO or ZEO_PY); python column skipped" >&2
fi
if [ -x "$LIMIT/zl_limit" ] && [ -x "$LIMIT/zl_pingpong" ]; then
  kinds+=(limit)
else
  echo "compare.sh: no zl_limit and zl_pingpong in $LIMIT (set LIMIT=...); limit skipped" >&2
fi
for enc in $encodings; do
  load_start[$enc]=$(loadavg)
  up=()
  for k in "${kinds[@]}"; do
    if start_server "$k" "$enc"; then up+=("$k"); fi
  done
  # The counter workloads' Python side: runzeo in its default mode.
  if [[ " ${up[*]} " == *" python "* ]] &&
     { [ -z "$only" ] || [[ ",$only," == *",counter"* ]]; } &&
     start_server python-default "$enc"; then
    up+=(python-default)
  fi
  for w in "${workloads[@]}"; do
    name=${w%%|*}
    if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
    for _ in $(seq 1 "$repeat"); do
      for k in "${up[@]}"; do
        # The limit serves the load workloads only; the counter's Python
        # side is runzeo in its default mode, and only that.
        [ "$k" = limit ] && [[ $name != load* ]] && continue
        [[ $name == counter* ]] && [ "$k" = python ] && continue
        [[ $name != counter* ]] && [ "$k" = python-default ] && continue
        bench_one "$k" "$enc" "$w"
      done
      if [ "$name" = load ] && [ -n "${pid[limit]:-}" ]; then
        bare_one pingpong "$enc"
        for k in "${up[@]}"; do bare_one "$k" "$enc"; done
      fi
    done
    for k in "${up[@]}" pingpong; do
      median "$k" "$enc" "$name"
      [ "$name" = load ] && median "$k" "$enc" bare
    done
    if [ -n "${res[python-default,$enc,$name]:-}" ]; then
      res[python,$enc,$name]=${res[python-default,$enc,$name]}
    fi
  done
  for k in "${up[@]}"; do stop_server "$k"; done
  report "$enc"
done
