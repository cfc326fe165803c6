#!/usr/bin/env bash
# Framed echo (docs/benchmarks.md, "Framed echo"): the same 80-byte frames
# echoed by shard tasklets (_net), gevent's StreamServer, asyncio and uvloop
# (protocol and streams), and the ceiling: a single-threaded Boost.Asio server
# in C++ (echo_asio); each server pinned to CPU 0 and the C++ load
# generator (echo_load) to CPU 1; 100 and 1,000 connections, one message in
# flight each. JSON lines on stdout.
#   tools/bench/echo_bench.sh [SECONDS] [SERVER...]   (after cmake --build build
#   --target shard echo_load echo_asio); SERVER: run only those (names below)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-5}
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
only=("${@:2}")
for entry in "${servers[@]}"; do
  name=${entry%%|*}
  command=${entry#*|}
  if ((${#only[@]})) && [[ ! " ${only[*]} " == *" $name "* ]]; then continue; fi
  for connections in 100 1000; do
    fifo=$(mktemp -u)
    mkfifo "$fifo"
    # shellcheck disable=SC2086
    SHARD_IO_THREADS=1 taskset -c 0 $command >"$fifo" 2>/dev/null &
    server=$!
    exec 3<"$fifo"
    read -r _ port <&3
    rm -f "$fifo"
    taskset -c 1 "$build/bin/echo_load" 127.0.0.1 "$port" "$connections" "$seconds" "$name" || true
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    exec 3<&-
  done
done
