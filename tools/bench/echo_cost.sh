#!/usr/bin/env bash
# What one framed-echo round trip costs the server (docs/benchmarks.md,
# "Framed echo"): CPU time and context switches per round trip, from the
# server's /proc counters around one echo_load run; with --syscalls, the
# system calls per round trip (strace -c -f: slows the server, so its round
# trips/s mean nothing then, the counts do). CPU time per round trip holds up
# on a loaded machine where round trips/s do not.
#   tools/bench/echo_cost.sh [--syscalls] SERVER CONNECTIONS SECONDS
#   SERVER: shard, gevent, uvloop_protocol, asio (as in echo_bench.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
strace_it=0
if [[ ${1:-} == --syscalls ]]; then strace_it=1; shift; fi
name=$1 connections=$2 seconds=$3
build=${BUILD:-build}
python=/usr/bin/python3.11
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
case $name in
  shard) command="$build/bin/shard python tools/bench/echo/shard_echo.py" ;;
  gevent) command="$python tools/bench/echo/gevent_echo.py" ;;
  uvloop_protocol) command="$python tools/bench/echo/asyncio_echo.py protocol uvloop" ;;
  asio) command="$build/bin/echo_asio" ;;
  *) echo "unknown server $name" >&2; exit 2 ;;
esac
fifo=$(mktemp -u)
mkfifo "$fifo"
# shellcheck disable=SC2086
SHARD_IO_THREADS=1 taskset -c 0 $command >"$fifo" 2>/dev/null &
server=$!
exec 3<"$fifo"
read -r _ port <&3
rm -f "$fifo"
trace=$(mktemp)
if ((strace_it)); then
  strace -c -f -o "$trace" -p "$server" 2>/dev/null &
  tracer=$!
  sleep 1
fi
# utime+stime (clock ticks) and context switches of every thread of the server.
counters() {
  local ticks=0 switches=0 t
  for t in /proc/"$server"/task/*; do
    read -r -a f <"$t/stat"
    ticks=$((ticks + f[13] + f[14]))
    switches=$((switches + $(awk '/ctxt_switches/ {s += $2} END {print s}' "$t/status")))
  done
  echo "$ticks $switches"
}
read -r ticks0 switches0 < <(counters)
result=$(taskset -c 1 "$build/bin/echo_load" 127.0.0.1 "$port" "$connections" "$seconds" "$name")
read -r ticks1 switches1 < <(counters)
if ((strace_it)); then
  kill -INT "$tracer"
  wait "$tracer" 2>/dev/null || true
fi
kill "$server" 2>/dev/null || true
wait "$server" 2>/dev/null || true
exec 3<&-
hz=$(getconf CLK_TCK)
# echo_load counts the round trips after its 0.5 s warm-up; the counters
# span the warm-up too, so the warm-up's share is estimated at the same rate.
python3 - "$result" "$((ticks1 - ticks0))" "$((switches1 - switches0))" "$hz" "$seconds" "$trace" "$strace_it" <<'EOF'
import json, sys
result, ticks, switches, hz, seconds, trace, strace_it = sys.argv[1:]
r = json.loads(result)
trips = r["round_trips"] * (float(seconds) + 0.5) / float(seconds)
out = dict(bench="echo_cost", server=r["server"], connections=r["connections"],
           round_trips_per_s=r["round_trips_per_s"],
           cpu_us_per_round_trip=round(int(ticks) / int(hz) * 1e6 / trips, 2),
           context_switches_per_round_trip=round(int(switches) / trips, 3))
if strace_it == "1":
    calls = {}
    for line in open(trace):
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            calls[parts[-1]] = int(parts[3])
    total = sum(calls.values())
    out["syscalls_per_round_trip"] = round(total / trips, 2)
    out["by_call"] = {k: round(v / trips, 3) for k, v in sorted(calls.items(), key=lambda kv: -kv[1]) if v / trips >= 0.01}
print(json.dumps(out))
EOF
rm -f "$trace"
