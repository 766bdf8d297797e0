#!/usr/bin/env bash
# Run every libFuzzer target of a ZEOLITE_FUZZ build within one time budget,
# each seeded from its seed program's output: every fuzz/*/*_seeds program is
# run with one folder and writes the seeds of each target it feeds to
# FOLDER/<target name>. Each target gets an even share of what is left of the
# budget when its turn comes (seeding and earlier overruns come off it).
# Inputs kept in fuzz/corpus/<target name>/ (found crashes, once fixed) are
# seeds too. A crash, leak, timeout or out-of-memory fails the run and prints
# the input as base64, so that it can join them there.
#
# Usage: scripts/fuzz.sh BUILD_DIR
#   FUZZ_SECONDS  the whole budget in seconds (default 240)
set -euo pipefail
build=$(realpath "${1:?usage: scripts/fuzz.sh BUILD_DIR}")
cd "$(dirname "$0")/.."
budget=${FUZZ_SECONDS:-240}
start=$SECONDS

mapfile -t targets < <(find "$build/fuzz" -type f -perm -u+x -name 'fuzz_*' | sort)
mapfile -t seeders < <(find "$build/fuzz" -type f -perm -u+x -name '*_seeds' | sort)
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no fuzz_* targets in $build/fuzz (configure with CC=clang -DZEOLITE_FUZZ=ON)" >&2
  exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/zeolite-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/seeds"
for s in "${seeders[@]}"; do
  "$s" "$work/seeds"
done

failed=0
for seeds in "$work"/seeds/*; do   # seeds for a target that was not built
  if ! printf '%s\n' "${targets[@]##*/}" | grep -qx "$(basename "$seeds")"; then
    echo "fuzz: seeds for $(basename "$seeds"), which $build does not have" >&2
    failed=1
  fi
done
left=${#targets[@]}
for t in "${targets[@]}"; do
  name=$(basename "$t")
  seeds=$work/seeds/$name
  share=$(( (budget - (SECONDS - start)) / left ))
  left=$((left - 1))
  [ "$share" -ge 1 ] || share=1
  if [ -z "$(ls -A "$seeds" 2>/dev/null)" ]; then
    echo "fuzz: $name has no seeds: no seed program wrote $seeds" >&2
    failed=1
    continue
  fi
  mkdir "$work/$name"   # the inputs it finds; the seeds stay as written
  kept=()
  [ ! -d "fuzz/corpus/$name" ] || kept=("fuzz/corpus/$name")
  log=$work/$name.log
  # timeout only guards against a hung fuzzer; -max_total_time ends a normal run.
  if timeout -k 10 $((share + 60)) "$t" -max_total_time="$share" -max_len=65536 -timeout=10 \
       -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/$name-" \
       "$work/$name" "$seeds" "${kept[@]}" >"$log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "fuzz: $name: ${runs:-?} runs in ${share} s from $(ls "$seeds" | wc -l) seeds, no finding"
  else
    failed=1
    echo "fuzz: $name FAILED (exit status $?); the end of its output:" >&2
    tail -n 60 "$log" >&2
    for a in "$work/$name-"*; do
      [ -f "$a" ] || continue
      echo "fuzz: $name: the input $(basename "$a") in base64; once fixed, keep it with" >&2
      echo "  base64 -d > fuzz/corpus/$name/$(basename "$a") <<< '...'" >&2
      base64 -w0 "$a" >&2
      echo >&2
    done
  fi
done
exit $failed
