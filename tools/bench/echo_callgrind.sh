#!/usr/bin/env bash
# What one framed-echo round trip costs the shard server in user space,
# counted instead of timed (docs/benchmarks.md, "Framed echo"): the server
# runs under callgrind with its cache simulation while echo_load keeps
# CONNECTIONS messages in flight; instrumentation is on only for a window
# after the warm-up. Prints one JSON line: instructions, data reads and
# writes, and D1 / last-level misses per round trip (round trips = calls of
# Connection::send, one per echoed frame). Same figures on a quiet or a busy
# machine, so a change of a few percent shows; the kernel and real caches'
# prefetchers are not in it, so confirm a gain with echo_bench.sh.
#   tools/bench/echo_callgrind.sh [BUILD_DIR] [CONNECTIONS]   (needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
connections=${2:-1000}
command -v callgrind_control >/dev/null || { echo "echo_callgrind.sh: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

work=$(mktemp -d)
trap 'kill "${server:-}" "${load:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
mkfifo "$work/ready"
# The caches of the host this was written on: 48 KiB 12-way D1, a 2 MiB
# 16-way share of the last level.
SHARD_IO_THREADS=1 valgrind --tool=callgrind --cache-sim=yes --instr-atstart=no \
  --D1=49152,12,64 --LL=2097152,16,64 --callgrind-out-file="$work/callgrind.out" \
  "$build/bin/shard" python tools/bench/echo/shard_echo.py >"$work/ready" 2>"$work/server.log" &
server=$!
exec 3<"$work/ready"
read -r _ port <&3
"$build/bin/echo_load" 127.0.0.1 "$port" "$connections" 30 shard >"$work/load.json" &
load=$!
sleep 8  # every connection made and its tasklet running
callgrind_control -i on "$server" >/dev/null 2>&1
sleep 15
callgrind_control -i off "$server" >/dev/null 2>&1
callgrind_control -d "$server" >/dev/null 2>&1
wait "$load"
kill "$server"
wait "$server" 2>/dev/null || true

/usr/bin/python3.11 - "$connections" "$work"/callgrind.out.* <<'EOF'
import json, re, sys

connections, path = int(sys.argv[1]), sys.argv[2]
names, calls, callee, totals = {}, {}, None, None
for line in open(path):
    m = re.match(r"^(c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
    if m:
        kind, ident, name = m.groups()
        if name:
            names[ident] = name
        if kind == "cfn":
            callee = ident
    elif line.startswith("calls="):
        calls[callee] = calls.get(callee, 0) + int(line.split()[0][len("calls="):])
    elif line.startswith("totals:"):
        totals = [int(x) for x in line.split()[1:]]
round_trips = sum(n for i, n in calls.items() if names.get(i, "").startswith("shard::netproto::Connection::send("))
if not round_trips or not totals:
    sys.exit("echo_callgrind.sh: no round trips in the window")
events = dict(zip("Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw".split(), totals))
per = lambda key: round(events[key] / round_trips, 1)
print(json.dumps({"bench": "framed_echo_callgrind", "connections": connections, "round_trips": round_trips,
                  "instructions": per("Ir"), "data_reads": per("Dr"), "data_writes": per("Dw"),
                  "d1_misses": round((events["D1mr"] + events["D1mw"]) / round_trips, 1),
                  "ll_misses": round((events["DLmr"] + events["DLmw"]) / round_trips, 1)}))
EOF
