#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test through
# ctest; with CI=true, then the sanitizer run (ops/sanitize.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/setup.sh
bash ops/build.sh
# The database tests need a real MariaDB: ctest starts a private one per build
# tree (the `mariadb` fixture in db/tests/tests.cmake: build/mariadb, then
# build-asan/mariadb) and stops it after them. Stopped here too whatever
# happens (a failure, Ctrl-C, a ctest killed by a timeout): no stray server.
stop_servers() {
  bash ops/mariadb.sh stop build/mariadb >/dev/null || true
  bash ops/mariadb.sh stop build-asan/mariadb >/dev/null || true
}
trap stop_servers EXIT
ctest --test-dir build --output-on-failure -j "${SHARD_JOBS:-2}"
# In CI the sanitizer run follows: ASan + UBSan build in build-asan/, every test
# again (a few minutes; docs/engine.md, "The sanitizer run").
if [ "${CI:-}" = "true" ]; then
  bash ops/sanitize.sh
  # Then one minute of fuzzing the frame decoder (ops/fuzz.sh; ~10 s to build).
  bash ops/fuzz.sh "${SHARD_FUZZ_SECONDS:-60}"
fi
