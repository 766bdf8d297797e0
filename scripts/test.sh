#!/usr/bin/env bash
# Install what is missing, then build and test in stages, printing the wall
# time of each stage and the total. Every build turns warnings into errors.
#   build       gcc Release
#   ctest       every suite and store_stress
#   asan build  gcc Debug with ASan and UBSan
#   asan ctest  every suite and store_stress again
#   tsan        ThreadSanitizer: store_stress built with it, then the server and
#               client suites of the Release build against a zeolite executable
#               built with it (Criterion's own runner aborts under TSan,
#               Criterion issue 274, so the suites themselves are not), the
#               suites that matter again with store calls off the loop, and
#               those that run on PostgreSQL against a cluster of its own
#   fuzz        clang build, then every fuzz target within FUZZ_SECONDS in all
#               (scripts/fuzz.sh; default 240)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
begin=$SECONDS
report=()

summary() {
  local rc=$?
  echo "==== stage times (wall clock; load average $(cut -d' ' -f1-3 /proc/loadavg))"
  printf '  %s\n' "${report[@]}"
  printf '  %-11s %5d s%s\n' total $((SECONDS - begin)) "$([ $rc -eq 0 ] || echo ", FAILED")"
}
trap summary EXIT

# stage NAME COMMAND...: run one stage and record its time.
stage() {
  local name=$1 t=$SECONDS
  shift
  echo "==== $name"
  "$@"
  report+=("$(printf '%-11s %5d s' "$name" $((SECONDS - t)))")
}

configure_build() {   # configure_build DIR CMAKE-ARGS...
  local dir=$1
  shift
  cmake -S . -B "$dir" -DZEOLITE_WERROR=ON "$@"
  cmake --build "$dir" -j"$jobs"
}

run_ctest() {
  (cd "$1" && ctest --output-on-failure --no-tests=error -j"$jobs")
}

asan_ctest() {
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run_ctest build-asan
}

# A TSan report fails at once: the server halts with status 66, its log holds
# the report, and the suites' helpers fail the test on either.
tsan() {
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZEOLITE_TSAN=ON -DZEOLITE_WERROR=ON
  cmake --build build-tsan -j"$jobs" --target zeolite store_stress
  export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1"
  build-tsan/test/stress/store_stress
  local suite
  for suite in server/test_server server/test_ops client/test_client; do
    ZEOLITE_BIN="$PWD/build-tsan/src/tools/zeolite" "build/test/$suite" --jobs "$jobs"
  done
  # Store calls off the loop: the workers, their jobs and the slots.
  ZEOLITE_OFFLOOP=1 ZEOLITE_BIN="$PWD/build-tsan/src/tools/zeolite" build/test/server/test_server \
    --jobs "$jobs" --filter "@(server_commit*|server_lock|server_full|server_blobdir|server_bounds|server_replay|server_order|server_offloop)/*"
  ZEOLITE_OFFLOOP=1 ZEOLITE_BIN="$PWD/build-tsan/src/tools/zeolite" build/test/client/test_client \
    --jobs "$jobs"
  tsan_pg
}

# The server on PostgreSQL under TSan (its workers beside the store's
# committer and connection pools): the suites ctest runs on PostgreSQL,
# against a cluster of this stage's own, removed however the stage ends.
tsan_pg() {
  local dir=/tmp/zlpg-tsan-$$ rc=0
  bash test/pg/cluster.sh start "$dir"
  export ZEOLITE_BIN="$PWD/build-tsan/src/tools/zeolite" ZEOLITE_PG_HOST=$dir \
    ZEOLITE_PG_SCRIPT="$PWD/test/pg/cluster.sh"
  ZEOLITE_STORE_BACKEND=postgresql build/test/server/test_server --jobs "$jobs" --filter \
    "!(server_blobdir|server_full|server_memory|server_process|server_config|server_tls|server_badinput)/*" \
    && build/test/server/test_server_pg --jobs "$jobs" \
    && build/test/server/test_server_pg_standby --jobs "$jobs" \
    && ZEOLITE_STORE_BACKEND=postgresql build/test/client/test_client --jobs "$jobs" \
      --filter "!(client_tls/*|client_storage/shared_blob_dir)" || rc=$?
  bash test/pg/cluster.sh stop "$dir"
  unset ZEOLITE_BIN ZEOLITE_PG_HOST ZEOLITE_PG_SCRIPT
  return "$rc"
}

fuzz() {
  CC=clang configure_build build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DZEOLITE_FUZZ=ON
  bash scripts/fuzz.sh build-fuzz
}

stage deps bash scripts/deps.sh
stage build configure_build build -DCMAKE_BUILD_TYPE=Release
stage ctest run_ctest build
stage "asan build" configure_build build-asan -DCMAKE_BUILD_TYPE=Debug -DZEOLITE_SANITIZE=ON
stage "asan ctest" asan_ctest
stage tsan tsan
stage fuzz fuzz
