#!/usr/bin/env bash
# bench/datafs/run.sh: time zeolite import, export and verify on a generated
# CMS-like Data.fs (with and without undo), side by side.
#
# usage: bench/datafs/run.sh [BUILD_DIR] [SIZE_BYTES] [WORK_DIR]
#   BUILD_DIR  a Release build (default: build)
#   SIZE_BYTES size of each generated Data.fs (default: 1 GiB)
#   WORK_DIR   scratch folder (default: a new one under $TMPDIR; kept, since
#              generating the files takes a while; delete it yourself)
#
# Reports per step: wall time, MB/s and transactions/s; CPU time (user + sys,
# all threads) and the MB/s it alone would allow (meaningful on a shared,
# loaded machine); peak RSS (/usr/bin/time -v) and peak RssAnon (sampled from
# /proc: LMDB's file-backed map does not count).
set -euo pipefail

build=${1:-build}
size=${2:-1073741824}
work=${3:-$(mktemp -d "${TMPDIR:-/tmp}/zl-datafs-bench.XXXXXX")}
zeolite=$build/src/tools/zeolite
gen=$build/bench/datafs/zl_datafs_gen
mkdir -p "$work"

for bin in "$zeolite" "$gen"; do
    [ -x "$bin" ] || { echo "missing $bin: build the zeolite and zl_datafs_gen targets" >&2; exit 2; }
done

# run LABEL BYTES TXNS CMD...: time one command and print one result line.
run() {
    local label=$1 bytes=$2 txns=$3
    shift 3
    local peak_anon=0 anon
    sync   # start each step with no writeback left over from the previous one
    /usr/bin/time -v "$@" 2>"$work/time.txt" >/dev/null &
    local pid=$!
    # sample the child of /usr/bin/time for its anonymous memory
    while kill -0 "$pid" 2>/dev/null; do
        for child in $(pgrep -P "$pid" 2>/dev/null); do
            anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$child/status" 2>/dev/null || echo 0)
            [ -n "$anon" ] && [ "$anon" -gt "$peak_anon" ] && peak_anon=$anon
        done
        sleep 0.05
    done
    if ! wait "$pid"; then
        echo "$label failed:" >&2
        cat "$work/time.txt" >&2
        exit 1
    fi
    local wall rss user sys
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
    user=$(awk -F': ' '/User time/ {print $2}' "$work/time.txt")
    sys=$(awk -F': ' '/System time/ {print $2}' "$work/time.txt")
    awk -v l="$label" -v b="$bytes" -v t="$txns" -v w="$wall" -v r="$rss" -v a="$peak_anon" \
        -v u="$user" -v s2="$sys" '
        BEGIN {
            n = split(w, p, ":"); s = 0
            for (i = 1; i <= n; i++) s = s * 60 + p[i]
            if (s <= 0) s = 0.001
            c = u + s2; if (c <= 0) c = 0.001
            printf "%-8s %7.2f s %8.1f MB/s %8.0f txns/s | cpu %6.2f s %8.1f MB/s | RSS %6.1f MB  RssAnon %5.1f MB\n",
                   l, s, b / 1e6 / s, t / s, c, b / 1e6 / c, r / 1024, a / 1024
        }'
}

bench_file() {
    local name=$1 undo=$2
    local fs=$work/$name.fs db=$work/$name.db out=$work/$name-export.fs
    if [ ! -f "$fs" ]; then
        echo "generating $fs ($size bytes, ${undo}% undo)..."
        "$gen" "$fs" --size "$size" --undo "$undo"
    fi
    local bytes txns
    bytes=$(stat -c %s "$fs")
    txns=$("$zeolite" verify -v "$fs" | grep -c "transaction tid")
    rm -rf "$db" "$out"
    cat "$fs" >/dev/null   # same page-cache state for every step
    echo "== $name.fs: $bytes bytes, $txns transactions"
    run "verify" "$bytes" "$txns" "$zeolite" verify "$fs"
    run "import" "$bytes" "$txns" "$zeolite" import --quiet "$fs" "$db"
    run "export" "$bytes" "$txns" "$zeolite" export --quiet "$db" "$out"
    if cmp -s "$fs" "$out"; then echo "export is byte-identical to the input"; else
        echo "export DIFFERS from the input" >&2; exit 1; fi
    rm -rf "$db" "$out"
}

bench_file cms-undo 3
bench_file cms-noundo 0
echo "work dir: $work"
