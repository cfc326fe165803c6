#!/usr/bin/env bash
# Instructions per ping-pong round trip, ours beside greenlet's switch pair,
# counted by callgrind (repeatable whatever else the machine does): the run at
# n=20,000 minus the run at n=10,000, divided by the 11,000 round trips between
# them (warm-up is n/10), so start-up and
# warm-up cancel out. Takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/../.."
BENCH=tools/bench/tasklet_bench.py
count() {  # count <command...>: total instructions of one run
  local out
  out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >/dev/null 2>&1
  callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
  rm -f "$out"
}
per_round_trip() {  # per_round_trip <impl> <command...>
  local impl=$1
  shift
  local small large
  small=$(count "$@" pingpong --n 10000 --repeat 1 --impl "$impl")
  large=$(count "$@" pingpong --n 20000 --repeat 1 --impl "$impl")
  echo $(((large - small) / 11000))  # 10,000 more round trips plus 1,000 more of warm-up (n/10)
}
ours=$(per_round_trip stackless build/bin/shard python "$BENCH")
peer=$(per_round_trip greenlet /usr/bin/python3.11 "$BENCH")
printf '{"bench": "pingpong_instructions", "impl": "stackless", "value": %d, "unit": "instructions/round-trip"}\n' "$ours"
printf '{"bench": "pingpong_instructions", "impl": "greenlet", "value": %d, "unit": "instructions/switch-pair"}\n' "$peer"
awk -v a="$ours" -v b="$peer" 'BEGIN { printf "ours/greenlet: %.3f\n", a / b }'
