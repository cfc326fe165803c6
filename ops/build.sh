#!/usr/bin/env bash
# Configures and builds into build/ (the executable lands at build/bin/shard).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${SHARD_JOBS:-2}
# CI: warnings are errors (SHARD_WERROR); said each time, so a tree once built for CI builds as usual after.
werror=OFF
if [ "${CI:-}" = "true" ]; then werror=ON; fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE="${SHARD_BUILD_TYPE:-RelWithDebInfo}" -DSHARD_WERROR="$werror"
cmake --build build -j "$jobs"
