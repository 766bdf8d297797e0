#!/usr/bin/env bash
# compare.sh: run every `zeolite bench` workload against a zeolite server and
# against the Python ZEO server, same machine, same run, and print the
# results side by side with ratios (zeolite / Python).
#
# usage: bench/compare.sh [--duration SECONDS] [--encoding Z|M|both] [--only W1,W2]
#                         [--repeat N]  (N runs of each; the median one is shown)
# env:   ZEOLITE   zeolite executable (default: build/src/tools/zeolite)
#        RUNZEO    Python runzeo command (default: /work/venv/bin/runzeo, or
#                  "$ZEO_PY -m ZEO.runzeo" when ZEO_PY is set); if none works,
#                  the Python column is skipped with a message.
# Both servers run in client-conflict-resolution mode with a blob directory,
# which is the mode zeolite implements; zeolite runs with fsync on.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ZEOLITE=${ZEOLITE:-$here/../build/src/tools/zeolite}
duration=10
repeat=1
encodings=Z
only=""
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2;;
    --encoding) encodings=$2; [ "$encodings" = both ] && encodings="Z M"; shift 2;;
    --only) only=$2; shift 2;;
    --repeat) repeat=$2; shift 2;;
    -h|--help) sed -n '2,13p' "$0"; exit 0;;
    *) echo "compare.sh: unknown argument $1" >&2; exit 2;;
  esac
done

if [ ! -x "$ZEOLITE" ]; then
  echo "compare.sh: no zeolite executable at $ZEOLITE (set ZEOLITE=...)" >&2
  exit 2
fi
if [ -z "${RUNZEO:-}" ]; then
  if [ -n "${ZEO_PY:-}" ]; then RUNZEO="$ZEO_PY -m ZEO.runzeo"
  elif [ -x /work/venv/bin/runzeo ]; then RUNZEO=/work/venv/bin/runzeo
  else RUNZEO=""; fi
fi

# label|workload and flags: the goals are judged on load at 16 clients and
# commit of 10 objects by 8 committers; load-pipelined shows loads with 8
# requests in flight per connection (prefetch-style).
workloads=(
  "load|load --clients 16"
  "load-pipelined|load --clients 16 --in-flight 8"
  "cold|cold --clients 4"
  "commit|commit --clients 8 --objects-per-txn 10"
  "mixed|mixed --clients 16"
  "conflict|conflict --clients 4 --objects-per-txn 2"
  "large|large --clients 4"
  "blob|blob --clients 2"
)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zeolite-compare-XXXXXX")
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  local p
  for p in $(seq 18400 18499 | shuf); do
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null; then echo "$p"; return; fi
  done
  return 1
}

wait_port() {
  local i
  for i in $(seq 1 200); do
    (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
    kill -0 "$server_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
  fi
}

# start_server KIND ENC DIR PORT
start_server() {
  local kind=$1 enc=$2 dir=$3 port=$4 mp=""
  mkdir -p "$dir"
  if [ "$kind" = zeolite ]; then
    [ "$enc" = M ] && mp=--msgpack
    "$ZEOLITE" serve -a "127.0.0.1:$port" -f "$dir/db" $mp >"$dir/server.log" 2>&1 &
  else
    [ "$enc" = M ] && mp="msgpack true"
    cat >"$dir/zeo.conf" <<EOF
<zeo>
  address 127.0.0.1:$port
  client-conflict-resolution true
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
  server_pid=$!
  wait_port "$port"
}

field() { # field JSON NAME
  jq -r ".$2 // empty" <<<"$1" 2>/dev/null || true
}

declare -A res
run_side() { # run_side KIND ENC
  local kind=$1 enc=$2 port dir w name
  port=$(free_port) || { echo "compare.sh: no free port" >&2; return 1; }
  dir=$tmp/$kind-$enc
  if ! start_server "$kind" "$enc" "$dir" "$port"; then
    echo "compare.sh: $kind server did not start (see below)" >&2
    tail -5 "$dir/server.log" >&2 || true
    stop_server
    return 1
  fi
  for w in "${workloads[@]}"; do
    name=${w%%|*}
    if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
    local runs=() r key
    for r in $(seq 1 "$repeat"); do
      # shellcheck disable=SC2086
      out=$("$ZEOLITE" bench "127.0.0.1:$port" --workload ${w#*|} --duration "$duration" \
            --json 2>"$dir/bench-$name.err" | tail -1) || out=""
      [ -n "$out" ] && runs+=("$out")
    done
    [ ${#runs[@]} -eq 0 ] && echo "compare.sh: $kind $name failed: $(tail -1 "$dir/bench-$name.err")" >&2
    # The median run by throughput (MB/s for the byte-moving workloads).
    key=ops_per_s
    [[ $name == large || $name == blob ]] && key=mb_per_s
    out=$(printf '%s\n' "${runs[@]}" | jq -s -c "sort_by(.$key) | .[(length - 1) / 2 | floor] // empty" 2>/dev/null || true)
    res[$kind,$enc,$name]=$out
  done
  stop_server
}

ratio() { # ratio A B
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.1fx", a / b }'
}

report() { # report ENC
  local enc=$1 w name z p zv pv
  echo
  echo "== encoding ${enc}5, ${duration}s per workload =="
  printf "%-15s %-8s %14s %14s %8s %10s %10s %10s %10s\n" workload clients \
    "zeolite" "python" ratio "z p50us" "z p99us" "py p50us" "py p99us"
  for w in "${workloads[@]}"; do
    name=${w%%|*}
    if [ -n "$only" ] && [[ ",$only," != *",$name,"* ]]; then continue; fi
    z=${res[zeolite,$enc,$name]:-}
    p=${res[python,$enc,$name]:-}
    local unit=ops_per_s suffix=""
    if [ "$name" = large ] || [ "$name" = blob ]; then unit=mb_per_s; suffix=" MB/s"; fi
    zv=$(field "$z" $unit); pv=$(field "$p" $unit)
    printf "%-15s %-8s %14s %14s %8s %10s %10s %10s %10s\n" "$name" \
      "$(sed -n 's/.*--clients \([0-9]*\).*/\1/p' <<<"$w")" \
      "${zv:--}$suffix" "${pv:--}$suffix" "$(ratio "$zv" "$pv")" \
      "$(field "$z" p50_us)" "$(field "$z" p99_us)" "$(field "$p" p50_us)" "$(field "$p" p99_us)"
    if [ "$name" = conflict ]; then
      printf "%-15s %-8s %14s %14s\n" "" conflicts "$(field "$z" conflicts)" "$(field "$p" conflicts)"
    fi
  done
  z=${res[zeolite,$enc,load]:-}; p=${res[python,$enc,load]:-}
  echo "goal load x16 >= 10x python: $(ratio "$(field "$z" ops_per_s)" "$(field "$p" ops_per_s)")," \
       "zeolite load p99 < 1000 us: $(field "$z" p99_us) us"
  z=${res[zeolite,$enc,commit]:-}; p=${res[python,$enc,commit]:-}
  echo "goal commit K=10 x8 >= 5x python: $(ratio "$(field "$z" ops_per_s)" "$(field "$p" ops_per_s)")"
}

have_python=1
if [ -z "$RUNZEO" ] || ! $RUNZEO --help >/dev/null 2>&1; then
  echo "compare.sh: no Python ZEO server found (set RUNZEO or ZEO_PY); python column skipped" >&2
  have_python=0
fi
for enc in $encodings; do
  run_side zeolite "$enc" || true
  [ $have_python = 1 ] && { run_side python "$enc" || true; }
  report "$enc"
done
