#!/usr/bin/env bash
# profile.sh: what a ZEO server spends per load, in figures the machine's
# load does not disturb: instructions (callgrind, the server alone) and
# system calls (perf's syscall tracepoints), plus its CPU time per load.
#
# usage: bench/limit/profile.sh [--server zeolite|limit] [--unix] [--duration S]
#                               [--clients N] [--driver bare|bench] [--no-callgrind]
# The driver is zl_pingpong's bare client (default) or `zeolite bench`; both
# load with 1 call in flight per client. The database is filled first by a
# short `zeolite bench` run (1000 objects of 128 bytes), outside the counts.
# env: ZEOLITE (default build/src/tools/zeolite), LIMIT (default build/bench/limit),
#      PROFILE_TOP=N also lists the N functions that cost the most instructions.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ZEOLITE=${ZEOLITE:-$here/../../build/src/tools/zeolite}
LIMIT=${LIMIT:-$here/../../build/bench/limit}
server=zeolite transport=tcp duration=5 clients=16 driver=bare callgrind=1
while [ $# -gt 0 ]; do
  case $1 in
    --server) server=$2; shift 2;;
    --unix) transport=unix; shift;;
    --duration) duration=$2; shift 2;;
    --clients) clients=$2; shift 2;;
    --driver) driver=$2; shift 2;;
    --no-callgrind) callgrind=0; shift;;
    -h|--help) sed -n '2,12p' "$0"; exit 0;;
    *) echo "profile.sh: unknown argument $1" >&2; exit 2;;
  esac
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zeolite-profile-XXXXXX")
spid=""
cleanup() {
  if [ -n "$spid" ]; then kill "$spid" 2>/dev/null || true; wait "$spid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

if [ "$transport" = unix ]; then addr=$tmp/s.sock; else addr=127.0.0.1:$((18500 + RANDOM % 400)); fi

start() { # start [WRAPPER...]: the server, waiting until it answers
  if [ "$server" = zeolite ]; then
    "$@" "$ZEOLITE" serve -a "$addr" -f "$tmp/db" >"$tmp/server.log" 2>&1 &
  else
    "$@" "$LIMIT/zl_limit" -a "$addr" >"$tmp/server.log" 2>&1 &
  fi
  spid=$!
  for _ in $(seq 1 300); do
    "$ZEOLITE" last-tid --timeout 1 "$addr" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "profile.sh: the server did not start" >&2; tail -5 "$tmp/server.log" >&2; exit 1
}

stop() {
  kill -INT "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  spid=""
}

fill() {
  "$ZEOLITE" bench "$addr" --workload load --clients 1 --duration 0.2 >/dev/null
}

drive() { # drive SECONDS: one load run; prints its JSON line
  if [ "$driver" = bare ]; then
    "$LIMIT/zl_pingpong" --connect "$addr" --clients "$clients" --duration "$1" --json
  else
    "$ZEOLITE" bench "$addr" --workload load --clients "$clients" --duration "$1" --json | tail -1
  fi
}

ticks() { read -r -a f <<<"$(sed 's/.*) //' "/proc/$spid/stat")"; echo $((f[11] + f[12])); }

# ---- native: loads/s, CPU and system calls per load --------------------------
start
fill
calls="read write writev readv recvfrom sendto recvmsg sendmsg epoll_wait epoll_pwait epoll_ctl futex"
ev=$(for c in $calls; do printf 'syscalls:sys_enter_%s,' "$c"; done)
t0=$(ticks)
perf stat -x, -e "${ev%,}" -p "$spid" -o "$tmp/perf.txt" -- sleep "$((duration + 1))" &
ppid=$!
sleep 0.5
out=$(drive "$duration")
wait "$ppid" || true
t1=$(ticks)
ops=$(jq .ops <<<"$out")
echo "$server, $transport, $clients clients, driver $driver, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "  loads/s $(jq .ops_per_s <<<"$out"), server CPU $(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
  -v n="$ops" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }') us per load"
awk -F, -v n="$ops" '$3 ~ /sys_enter_/ && $1 > 0 { sub(/.*sys_enter_/, "", $3); total += $1
    printf "  %-12s %6.3f per load\n", $3, $1 / n }
  END { printf "  %-12s %6.3f per load\n", "all", total / n }' "$tmp/perf.txt"
stop

# ---- callgrind: the server's instructions per load ---------------------------
[ "$callgrind" = 1 ] || exit 0
rm -rf "$tmp/db"
start valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" --dump-instr=no
fill
callgrind_control -z "$spid" >/dev/null 2>&1
out=$(drive "$duration")
callgrind_control -d "$spid" >/dev/null 2>&1
ops=$(jq .ops <<<"$out")
ir=$(callgrind_annotate "$(ls -t "$tmp"/cg.out* | head -1)" 2>/dev/null |
     awk '/PROGRAM TOTALS/ { gsub(/,/, "", $1); print $1; exit }')
echo "  instructions per load (callgrind, $ops loads): $((ir / ops))"
if [ -n "${PROFILE_TOP:-}" ]; then
  # The dump is taken inside the loop: the frames around it show 100%.
  callgrind_annotate --threshold=100 "$(ls -t "$tmp"/cg.out* | head -1)" 2>/dev/null |
    sed -n '/file:function/,$p' | grep -v '(100.0%)' | sed 's/ \[.*//' | head -"$PROFILE_TOP"
fi
stop
