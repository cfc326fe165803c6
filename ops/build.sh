#!/usr/bin/env bash
# Configures and builds into build/ (the executable lands at build/bin/shard).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${SHARD_JOBS:-2}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${SHARD_BUILD_TYPE:-RelWithDebInfo}"
cmake --build build -j "$jobs"
