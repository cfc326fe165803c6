#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/setup.sh
bash ops/build.sh
ctest --test-dir build --output-on-failure -j "${SHARD_JOBS:-2}"
# In CI, one minute of fuzzing the frame decoder (ops/fuzz.sh; ~10 s to build).
if [[ "${CI:-}" == "true" ]]; then
  bash ops/fuzz.sh "${SHARD_FUZZ_SECONDS:-60}"
fi
