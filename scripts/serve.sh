#!/usr/bin/env bash
# Install dependencies, build, and serve ./var/db as storage "1" on 127.0.0.1:8100.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
mkdir -p var
exec build/src/tools/zeolite serve -a 127.0.0.1:8100 -f var/db "$@"
