#!/usr/bin/env bash
# run_test.sh <pattern> <command> [args...]: runs a test and passes only if it
# exits 0 AND one of its last lines matches the extended regex <pattern> (the
# test framework's own "all passed" line, which it prints last: a child
# process's earlier "OK" does not count). ctest alone cannot require both: with
# PASS_REGULAR_EXPRESSION it ignores the exit status, without it a test that
# leaves early through _exit(0) or os._exit(0) passes.
set -uo pipefail
pattern=$1
shift
log=$(mktemp "${TMPDIR:-/tmp}/shard-test.XXXXXX") || exit 2
trap 'rm -f "$log"' EXIT
"$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
if [ "$status" -gt 128 ]; then
  echo "run_test.sh: $1 was killed by signal $((status - 128))" >&2
  exit "$status"
elif [ "$status" -ne 0 ]; then
  echo "run_test.sh: $1 exited with status $status" >&2
  exit "$status"
fi
if ! tail -n 5 "$log" | grep -Eq -- "$pattern"; then
  echo "run_test.sh: $1 exited with status 0 but printed no line matching '$pattern' at its end: it ended before reporting success" >&2
  exit 1
fi
