#!/usr/bin/env bash
# The sanitizer run: builds the whole tree with AddressSanitizer and
# UndefinedBehaviorSanitizer into build-asan/ (no LTO, stack guard pages on) and
# runs every ctest entry there. The Python tests run inside the sanitized
# `shard` executable; libpython is not instrumented, so PYTHONMALLOC=malloc
# routes Python's objects through ASan's allocator, where a use after free of
# one by our code is caught. CPython's own allocations that live until exit are
# suppressed by ops/lsan.supp, so leaks of our C++ allocations still fail.
# Its last run is recorded in docs/engine.md ("The sanitizer run").
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${SHARD_JOBS:-2}
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSHARD_LTO=OFF -DSHARD_TEST_TIMEOUT=600 \
  -DSHARD_SANITIZE=ON -DSHARD_STACK_GUARD_PAGES=ON
cmake --build build-asan -j "$jobs"
export ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=0:check_initialization_order=1:strict_init_order=1:abort_on_error=0"
export LSAN_OPTIONS="suppressions=$PWD/ops/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONMALLOC=malloc
# Sanitized code runs 2-5x slower: the hang deadline scales with it.
ctest --test-dir build-asan --output-on-failure -j "$jobs" "$@"
