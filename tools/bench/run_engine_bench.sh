#!/usr/bin/env bash
# Runs every tasklet benchmark for shard (stackless) and its peers (greenlet, gevent,
# asyncio on Debian's CPython 3.11, the interpreter shard embeds) in one run, prints
# the JSON lines, then a table of ours beside the peers. Results go to docs/benchmarks.md.
#
#   tools/bench/run_engine_bench.sh [--quick] [--large]
#     --quick  small N and fewer repetitions (a smoke test, not figures to publish)
#     --large  also memory at 1,000,000 for stackless and greenlet (minutes; ~9 GB)
set -euo pipefail
cd "$(dirname "$0")/../.."

SHARD=build/bin/shard
PEER=/usr/bin/python3.11   # Debian's 3.11.2, not the pyenv python first on PATH
BENCH=tools/bench/tasklet_bench.py
PP_N=200000 REPEAT=5 MEM_N=100000 LARGE=0
for arg in "$@"; do
  case "$arg" in
    --quick) PP_N=20000 REPEAT=2 MEM_N=10000 ;;
    --large) LARGE=1 ;;
    *) echo "usage: $0 [--quick] [--large]" >&2; exit 2 ;;
  esac
done

OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT
run() { echo "+ $*" >&2; "$@" | tee -a "$OUT"; }

run "$SHARD" python "$BENCH" pingpong --n "$PP_N" --repeat "$REPEAT"
run "$PEER" "$BENCH" pingpong --n "$PP_N" --repeat "$REPEAT"
# Memory: one process per impl, so no impl inherits another's freed memory.
run "$SHARD" python "$BENCH" memory --n "$MEM_N"
for impl in greenlet asyncio; do
  run "$PEER" "$BENCH" memory --impl "$impl" --n "$MEM_N"
done
if [ "$LARGE" = 1 ]; then
  run "$SHARD" python "$BENCH" memory --n 1000000
  run "$PEER" "$BENCH" memory --impl greenlet --n 1000000
fi

"$PEER" - "$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
fig = {(r["bench"], r["impl"], r["n"]): r for r in rows}
# Page tables are kernel memory, not in RSS, but a blocked tasklet costs both.
for (bench, impl, n), r in list(fig.items()):
    if bench == "memory" and ("memory_pte", impl, n) in fig:
        total = r["value"] + fig["memory_pte", impl, n]["value"]
        fig["memory_total", impl, n] = dict(r, bench="memory_total", value=total)

def line(name, ours, peer, note):
    if ours and peer:
        print(f"| {name} | {ours['value']:,} | {peer['impl']} {peer['value']:,} | "
              f"{ours['value'] / peer['value']:.2f} | {note} |")

print("\n| figure (lower is better) | stackless (shard) | peer | ours/peer | target |")
print("|---|---|---|---|---|")
for (bench, impl, n), r in sorted(fig.items()):
    if impl != "stackless":
        continue
    if bench == "pingpong":
        name = f"ping-pong ns/round trip, n={n:,}"
        line(name, r, fig.get((bench, "greenlet", n)), "<= 0.5")
        line(name, r, fig.get((bench, "gevent", n)), "")
        line(name, r, fig.get((bench, "asyncio", n)), "<= 0.02 (50x faster)")
    else:
        name = f"{bench} bytes/blocked, n={n:,}"
        note = {"memory": "RSS <= 8192, below greenlet", "memory_pte": "page tables (VmPTE)",
                "memory_total": "RSS + page tables"}[bench]
        line(name, r, fig.get((bench, "greenlet", n)), note)
        line(name, r, fig.get((bench, "asyncio", n)), "")
for r in rows:
    if r["bench"] == "memory":
        print(f"# memory {r['impl']} n={r['n']:,}: create {r['create_s']} s, release {r['release_s']} s",
              file=sys.stderr)
EOF
