#!/usr/bin/env bash
# Network item 8(d) (docs/benchmarks.md, "urllib fetches"): 100 tasklets each
# fetch, with urllib.request, a local endpoint that answers after 200 ms,
# inside `shard run`'s game loop (per dispatch strategy, and with phase 4's
# run budget at 0.5 and 0.9 of the frame), beside gevent's
# monkey-patched urllib, alternating, ROUNDS rounds against one server
# process. JSON lines on stdout, then a table (best and median per row).
#   tools/bench/urllib_bench.sh [ROUNDS]   (after cmake --build build)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-5}
build=${BUILD:-build}
python=/usr/bin/python3.11
bench=tools/bench/urllib_bench.py
out=$(mktemp)
fifo=$(mktemp -u)
mkfifo "$fifo"
$python $bench serve --delay 0.2 >"$fifo" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$fifo" "$out"' EXIT
exec 3<"$fifo"
read -r _ port <&3
echo "# commit $(git rev-parse --short HEAD), server port $port, $rounds rounds" >&2
for _ in $(seq "$rounds"); do
  for config in "main_loop 0.5" "pending_call 0.5" "pending_call 0.9"; do
    read -r strategy budget <<<"$config"
    "$build/bin/shard" run --strategy "$strategy" --run-budget "$budget" $bench shard --port "$port" \
      --run-budget "$budget" 2>/dev/null | tee -a "$out"
  done
  $python $bench gevent --port "$port" | tee -a "$out"
done
$python - "$out" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    r = json.loads(line)
    key = r["impl"] + (f" ({r['strategy']}, run budget {r['run_budget']})" if "strategy" in r else "")
    rows.setdefault(key, []).append(r)
print("| fetcher | best s | median s | frame overruns (max) | answered |")
print("|---|---|---|---|---|")
for key, runs in rows.items():
    times = [r["total_s"] for r in runs]
    overruns = max((r.get("frame_overruns", 0) for r in runs), default=0)
    print(f"| {key} | {min(times):.3f} | {statistics.median(times):.3f} | "
          f"{overruns if 'frame_overruns' in runs[0] else '-'} | {min(r['answered'] for r in runs)}/{runs[0]['fetches']} |")
PY
