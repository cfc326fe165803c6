#!/usr/bin/env bash
# The sanitizer run: builds the whole tree with AddressSanitizer and
# UndefinedBehaviorSanitizer into build-asan/ (no LTO, stack guard pages on) and
# runs every ctest entry there. The Python tests run inside the sanitized
# `shard` executable; libpython is not instrumented, so Python's objects go
# through malloc, ASan's allocator, where a use after free of one by our code is
# caught (a sanitized `shard` always does so, -E or not; PYTHONMALLOC=malloc is
# for the GoogleTest binaries that embed Python). ops/lsan.supp lists known
# leaks (none today), so a leak of our allocations fails.
# Its last run is recorded in docs/engine.md ("The sanitizer run").
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${SHARD_JOBS:-2}
werror=OFF
if [ "${CI:-}" = "true" ]; then werror=ON; fi  # as ops/build.sh
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHARD_LTO=OFF -DSHARD_TEST_TIMEOUT=600 \
  -DSHARD_WERROR="$werror" \
  -DSHARD_SANITIZE=ON -DSHARD_STACK_GUARD_PAGES=ON
cmake --build build-asan -j "$jobs"
# detect_stack_use_after_return=1 passes every test but test_scale: ASan gives
# each started fiber a fake stack of its own, and thousands exhaust the mappings.
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=0:check_initialization_order=1:strict_init_order=1:abort_on_error=0"
export LSAN_OPTIONS="suppressions=$PWD/ops/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONMALLOC=malloc
# Sanitized code runs 2-5x slower: the hang deadline scales with it.
ctest --test-dir build-asan --output-on-failure -j "$jobs" "$@"
# ASan says this (and goes on) when a switch between tasklet stacks is not
# annotated (engine/src/core/switch_checks.h): its stack checks are then off.
# ctest keeps every test's output there.
log=build-asan/Testing/Temporary/LastTest.log
if grep -q "ASan is ignoring requested __asan_handle_no_return" "$log"; then
  echo "sanitize.sh: a fiber switch is not annotated for ASan (see $log)" >&2
  exit 1
fi
