#!/usr/bin/env bash
# space.sh: the disk space of a zeolite database beside the FileStorage
# (Data.fs) holding the same history, after `zeolite bench` commits and after
# a pack.
#
# usage: bench/space.sh [--duration SECONDS] [--objects-per-txn K] [--clients N]
#                       [--object-size BYTES]
# env:   ZEOLITE   zeolite executable (default: build/src/tools/zeolite)
# A fresh server takes the commit workload (default 1,000 objects of 300 bytes
# per transaction, 2 clients, 20 s); then, and again after `zeolite pack -d 0`
# (history before now removed), it prints:
#   data.mdb    the LMDB file (its size never shrinks: freed pages are reused)
#   compact     `zeolite backup --compact` of it (the pages in use)
#   Data.fs     `zeolite export` of the same database
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
ZEOLITE=${ZEOLITE:-$here/../build/src/tools/zeolite}
duration=20
k=1000
clients=2
size=300
while [ $# -gt 0 ]; do
  case $1 in
    --duration) duration=$2; shift 2;;
    --objects-per-txn) k=$2; shift 2;;
    --clients) clients=$2; shift 2;;
    --object-size) size=$2; shift 2;;
    -h|--help) sed -n '2,15p' "$0"; exit 0;;
    *) echo "space.sh: unknown argument $1" >&2; exit 2;;
  esac
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zeolite-space-XXXXXX")
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

sock=$tmp/server.sock
"$ZEOLITE" serve -a "$sock" -f "$tmp/db" >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  [ -S "$sock" ] && "$ZEOLITE" last-tid --timeout 1 "$sock" >/dev/null 2>&1 && break
  sleep 0.1
done

bytes() { stat -c %s "$1"; }

# measure LABEL: the three sizes, and their ratios to Data.fs
measure() {
  rm -rf "$tmp/compact" "$tmp/Data.fs"
  "$ZEOLITE" backup "$tmp/db" "$tmp/compact" --compact >/dev/null
  "$ZEOLITE" export "$tmp/db" "$tmp/Data.fs" --quiet >/dev/null
  local db cp fs
  db=$(bytes "$tmp/db/data.mdb"); cp=$(bytes "$tmp/compact/data.mdb"); fs=$(bytes "$tmp/Data.fs")
  awk -v l="$1" -v db="$db" -v cp="$cp" -v fs="$fs" 'BEGIN {
    printf "%-12s data.mdb %12d (%.2fx)  compact %12d (%.2fx)  Data.fs %12d\n",
           l, db, db / fs, cp, cp / fs, fs }'
}

"$ZEOLITE" bench "$sock" --workload commit --clients "$clients" --objects-per-txn "$k" \
  --object-size "$size" --duration "$duration" --json | tail -1 |
  jq -r '"\(.ops) commits of \(.objects_per_txn) objects (\(.ops_per_s) tx/s)"'
measure "after bench"
"$ZEOLITE" pack "$sock" -d 0 >/dev/null
measure "after pack"
