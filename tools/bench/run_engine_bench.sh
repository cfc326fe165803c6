#!/usr/bin/env bash
# Runs every tasklet benchmark for shard (stackless) and its peers (greenlet, gevent,
# asyncio on Debian's CPython 3.11, the interpreter shard embeds) in one run, prints
# the JSON lines, then a table of ours beside the peers. Results go to docs/benchmarks.md.
#
#   tools/bench/run_engine_bench.sh [--quick] [--large]
#     --quick  small N and fewer repetitions (a smoke test, not figures to publish)
#     --large  also memory at 1,000,000 for stackless, greenlet and asyncio (minutes; ~9 GB)
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

# Ping-pong: both on the same CPU, one after the other. On a VM the vCPUs can
# differ by half (one may share its core with a busy neighbour), which would
# otherwise decide the ratio.
PIN=()
if command -v taskset >/dev/null; then PIN=(taskset -c "$(taskset -pc $$ | sed "s/.*[:,-] *//")"); fi
run "${PIN[@]}" "$SHARD" python "$BENCH" pingpong --n "$PP_N" --repeat "$REPEAT"
run "${PIN[@]}" "$PEER" "$BENCH" pingpong --n "$PP_N" --repeat "$REPEAT"
# Memory: one process per impl, so no impl inherits another's freed memory.
run "$SHARD" python "$BENCH" memory --n "$MEM_N"
for impl in greenlet asyncio; do
  run "$PEER" "$BENCH" memory --impl "$impl" --n "$MEM_N"
done
if [ "$LARGE" = 1 ]; then
  run "$SHARD" python "$BENCH" memory --n 1000000
  run "$PEER" "$BENCH" memory --impl greenlet --n 1000000
  run "$PEER" "$BENCH" memory --impl asyncio --n 1000000
fi
# Tasklets created, run and finished per second (the peers in their own process).
run "$SHARD" python tools/bench/spawn_bench.py --n "$MEM_N" --repeat "$REPEAT"
run "$PEER" tools/bench/spawn_bench.py --n "$MEM_N" --repeat "$REPEAT"
# Dispatch strategies inside the game loop, and call_in_thread (no peer: the
# strategies are compared with each other).
run "$SHARD" python tools/bench/dispatch_bench.py call_in_thread
run "$SHARD" python tools/bench/dispatch_bench.py --seconds "$([ "$PP_N" = 20000 ] && echo 1 || echo 3)" strategies

"$PEER" - "$OUT" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
fig = {(r["bench"], r["impl"], r["n"]): r for r in rows if "n" in r}
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
    if bench == "spawn_run_finish":
        # Higher is better here: show peer/ours so that a ratio above 1 is ours ahead.
        for peer_impl in ("greenlet", "gevent", "asyncio"):
            peer = fig.get((bench, peer_impl, n))
            if peer:
                print(f"| tasklets created+run+finished per s, n={n:,} (higher is better) | {r['value']:,} | "
                      f"{peer_impl} {peer['value']:,} | {r['value'] / peer['value']:.1f}x | >= 2,000,000 and >= 10x asyncio |")
    elif bench == "pingpong":
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
print("\n| dispatch strategy | dispatch p50/p99/max us | run p50/p99/max us | completions/s | lock acq. per drain | frame overruns |")
print("|---|---|---|---|---|---|")
for r in rows:
    if r["bench"] == "dispatch_strategy":
        print(f"| {r['strategy']} | {r['dispatch_p50_us']:.0f} / {r['dispatch_p99_us']:.0f} / {r['dispatch_max_us']:.0f} | "
              f"{r['run_p50_us']:.0f} / {r['run_p99_us']:.0f} / {r['run_max_us']:.0f} | {r['completions_per_s']} | "
              f"{r['lock_acquisitions_per_drain']} | {r['frame_overruns']} |")
for r in rows:
    if r["bench"].startswith("call_in_thread"):
        print(f"\n100 x call_in_thread(time.sleep, 0.2): {r['total_s']} s, {r['frame_overruns']} frame overruns "
              "(target < 0.3 s, none)")
for r in rows:
    if r["bench"] == "memory":
        print(f"# memory {r['impl']} n={r['n']:,}: create {r['create_s']} s, release {r['release_s']} s",
              file=sys.stderr)
EOF
