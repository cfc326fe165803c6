#!/usr/bin/env bash
# Framed echo (docs/benchmarks.md, "Framed echo"): the same 80-byte frames
# echoed by shard tasklets (_net), gevent's StreamServer, asyncio and uvloop
# (protocol and streams), and the ceiling: a single-threaded Boost.Asio server
# in C++ (echo_asio); each server pinned to CPU 0 and the C++ load
# generator (echo_load) to CPU 1; 100 and 1,000 connections, one message in
# flight each. One JSON line per run: echo_load's round trips/s and latency,
# plus what a round trip cost the server: CPU time and context switches (all
# its threads, from /proc), which hold up on a loaded machine where round
# trips/s do not; with --syscalls, system calls per round trip by name
# (strace -c -f: it slows the server, so that run's round trips/s mean
# nothing, its counts do).
#   tools/bench/echo_bench.sh [--syscalls] [SECONDS] [SERVER...]
#   (after cmake --build build --target shard echo_load echo_asio)
#   SERVER: run only those (names below); CONNECTIONS=100 overrides the counts.
set -euo pipefail
cd "$(dirname "$0")/../.."
strace_it=0
if [[ ${1:-} == --syscalls ]]; then strace_it=1; shift; fi
seconds=${1:-5}
only=("${@:2}")
read -r -a counts <<<"${CONNECTIONS:-100 1000}"
build=${BUILD:-build}
python=/usr/bin/python3.11
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

servers=(
  "shard|$build/bin/shard python tools/bench/echo/shard_echo.py"
  "gevent|$python tools/bench/echo/gevent_echo.py"
  "asyncio_protocol|$python tools/bench/echo/asyncio_echo.py protocol asyncio"
  "asyncio_streams|$python tools/bench/echo/asyncio_echo.py streams asyncio"
  "uvloop_protocol|$python tools/bench/echo/asyncio_echo.py protocol uvloop"
  "uvloop_streams|$python tools/bench/echo/asyncio_echo.py streams uvloop"
  "asio|$build/bin/echo_asio"
)

# utime+stime (clock ticks) and context switches of every thread of $1.
counters() {
  local ticks=0 switches=0 t f
  for t in /proc/"$1"/task/*; do
    read -r -a f <"$t/stat"
    ticks=$((ticks + f[13] + f[14]))
    switches=$((switches + $(awk '/ctxt_switches/ {s += $2} END {print s}' "$t/status")))
  done
  echo "$ticks $switches"
}

for entry in "${servers[@]}"; do
  name=${entry%%|*}
  command=${entry#*|}
  if ((${#only[@]})) && [[ ! " ${only[*]} " == *" $name "* ]]; then continue; fi
  for connections in "${counts[@]}"; do
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
    read -r ticks0 switches0 < <(counters "$server")
    result=$(taskset -c 1 "$build/bin/echo_load" 127.0.0.1 "$port" "$connections" "$seconds" "$name" || true)
    read -r ticks1 switches1 < <(counters "$server")
    if ((strace_it)); then
      kill -INT "$tracer"
      wait "$tracer" 2>/dev/null || true
    fi
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    exec 3<&-
    # echo_load counts round trips after its 0.5 s warm-up; the counters span
    # the warm-up too, so its share is estimated at the same rate.
    python3 - "$result" "$((ticks1 - ticks0))" "$((switches1 - switches0))" "$(getconf CLK_TCK)" \
      "$seconds" "$trace" "$strace_it" <<'EOF'
import json, sys
result, ticks, switches, hz, seconds, trace, strace_it = sys.argv[1:]
r = json.loads(result)
trips = max(1.0, r["round_trips"] * (float(seconds) + 0.5) / float(seconds))
r["cpu_us_per_round_trip"] = round(int(ticks) / int(hz) * 1e6 / trips, 2)
r["context_switches_per_round_trip"] = round(int(switches) / trips, 3)
if strace_it == "1":
    calls = {}
    for line in open(trace):
        parts = line.split()
        if len(parts) >= 5 and parts[0][0].isdigit() and parts[-1] != "total":
            calls[parts[-1]] = int(parts[3])
    r["syscalls_per_round_trip"] = round(sum(calls.values()) / trips, 2)
    r["syscalls"] = {k: round(v / trips, 3) for k, v in sorted(calls.items(), key=lambda kv: -kv[1]) if v / trips >= 0.01}
print(json.dumps(r), flush=True)
EOF
    rm -f "$trace"
  done
done
