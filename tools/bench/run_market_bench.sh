#!/usr/bin/env bash
# The market benchmark (docs/benchmarks.md, "The market"): starts its own
# private MariaDB (ops/mariadb.sh, in build/mariadb-bench: the tests' server
# is not touched) and runs tools/bench/market_bench.py ROUNDS times: trades/s
# through the market service (one book, then a book per tasklet) beside a
# bare money transfer on the same pool. One JSON line per figure. Stops the
# server on exit (unless it was running before).
#
#   tools/bench/run_market_bench.sh [--quick] [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/../.."

SHARD=build/bin/shard
DIR=build/mariadb-bench
SECONDS_RUN=5 ROUNDS=3
while (($#)); do
  case "$1" in
    --quick) SECONDS_RUN=1 ROUNDS=1 ;;
    --rounds) ROUNDS=$2; shift ;;
    *) echo "usage: $0 [--quick] [--rounds N]" >&2; exit 2 ;;
  esac
  shift
done
[[ -x $SHARD ]] || { echo "run_market_bench: $SHARD is missing: build first (cmake --build build)" >&2; exit 1; }

if bash ops/mariadb.sh status "$DIR" >/dev/null 2>&1; then
  echo "run_market_bench: using the server already running in $DIR" >&2
else
  trap 'bash ops/mariadb.sh stop "$DIR" >&2' EXIT
  bash ops/mariadb.sh start "$DIR" >&2
fi
for round in $(seq 1 "$ROUNDS"); do
  echo "{\"round\": $round}"
  "$SHARD" python tools/bench/market_bench.py --server-dir "$DIR" --seconds "$SECONDS_RUN"
done
