"""Packet -> tasklet latency per dispatch strategy while the main thread is
saturated (Network item 8(c); docs/benchmarks.md, "Packets under each dispatch
strategy").

Run: build/bin/shard python tools/bench/net_dispatch_bench.py [--seconds 3] [--fps 30]

Inside the game loop (30 FPS) 50 Python tasklets saturate the main thread (each
computes ~1 ms between switches, as tools/bench/dispatch_bench.py does), while a
client process (this file under /usr/bin/python3.11, --client) sends one
packet per millisecond, in turn over 16 connections, each carrying its send
time (CLOCK_MONOTONIC, shared by both processes). One receiver tasklet per
connection loops on recvpacket(). Per strategy: the engine's histograms
(completion on the IO thread -> runnable, -> running), the end-to-end latency
(client send -> the receiver running again, measured by the receiver),
packets/s, and the IO threads' interpreter-lock acquisitions per drain.
One JSON line per strategy.
"""

import argparse
import json
import os
import socket
import struct
import subprocess
import sys
import time

CONNECTIONS = 16
BUSY_TASKLETS = 50
PEER_PYTHON = "/usr/bin/python3.11"


def frame(payload):
    # docs/protocol.md: length, version 1, kind 9 (notification), no flags, peer, node 0, target 0.
    return struct.pack("<IBBBBH", 12 + len(payload), 1, 9, 0, 0, 0) + b"\0" * 6 + payload


def client(port, seconds, interval):
    sockets = []
    for _ in range(CONNECTIONS):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sockets.append(s)
    print("connected", flush=True)
    end = time.monotonic() + seconds
    n = 0
    next_at = time.monotonic()
    while time.monotonic() < end:
        next_at += interval
        sockets[n % CONNECTIONS].sendall(frame(struct.pack("<q", time.monotonic_ns())))
        n += 1
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    for s in sockets:
        s.close()


def percentiles(values):
    values = sorted(values)
    if not values:
        return 0, 0, 0
    pick = lambda p: values[min(len(values) - 1, int(p * len(values)))]  # noqa: E731
    return round(pick(0.5)), round(pick(0.99)), round(values[-1])


def bench_strategy(name, seconds, interval):
    import _engine
    import _net
    import gameloop
    import stackless
    import uthread

    stop = [False]
    latencies_us = []
    listener = _net.listen("127.0.0.1", 0)
    peer = subprocess.Popen([PEER_PYTHON, os.path.abspath(__file__), "--client", str(listener.port),
                             "--seconds", str(seconds), "--interval", str(interval)],
                            stdout=subprocess.PIPE, text=True)
    connections = [listener.accept(timeout=10) for _ in range(CONNECTIONS)]
    peer.stdout.readline()

    def spin(s):
        end = time.perf_counter() + s
        while time.perf_counter() < end:
            pass

    def busy():
        while not stop[0]:
            spin(0.001)
            stackless.schedule()

    def receiver(connection):
        try:
            while True:
                (sent_ns,) = struct.unpack("<q", connection.recvpacket())
                latencies_us.append((time.monotonic_ns() - sent_ns) / 1e3)
        except _net.error:
            pass  # the client closed: the run is over

    tasklets = [uthread.new(busy) for _ in range(BUSY_TASKLETS)]
    receivers = [uthread.new(receiver, c) for c in connections]
    gameloop.set_dispatch_strategy(name)
    gameloop.reset_dispatch_stats()
    io_locks = _engine.io_stats()["lock_acquisitions"]
    start = time.monotonic()

    def stopper(frame, dt):
        if not any(t.alive for t in receivers) or time.monotonic() - start > seconds + 10:
            gameloop.remove_tick(stopper)
            gameloop.stop()

    gameloop.add_tick(stopper)
    overruns = gameloop.stats()["overruns"] if gameloop.stats()["frame"] else 0
    gameloop.run()
    overruns = gameloop.stats()["overruns"] - overruns
    stop[0] = True
    for t in tasklets:
        t.kill()
    peer.wait(timeout=10)
    s = gameloop.dispatch_stats()[name]
    drains = max(s["drains"], 1)
    # Acquisitions on the IO threads (the dispatcher's own count of them is
    # s["lock_acquisitions"]: the same ones, not added twice).
    locks = _engine.io_stats()["lock_acquisitions"] - io_locks
    p50, p99, top = percentiles(latencies_us)
    print(json.dumps(dict(
        bench="net_dispatch_strategy", impl="shard", strategy=name, seconds=seconds, packets=len(latencies_us),
        packets_per_s=round(len(latencies_us) / seconds),
        dispatch_p50_us=s["dispatch_latency"]["p50_us"], dispatch_p99_us=s["dispatch_latency"]["p99_us"],
        dispatch_max_us=s["dispatch_latency"]["max_us"],
        run_p50_us=s["run_latency"]["p50_us"], run_p99_us=s["run_latency"]["p99_us"],
        run_max_us=s["run_latency"]["max_us"],
        end_to_end_p50_us=p50, end_to_end_p99_us=p99, end_to_end_max_us=top,
        drains=s["drains"], lock_acquisitions=locks, lock_acquisitions_per_drain=round(locks / drains, 3),
        frame_overruns=overruns)), flush=True)
    for c in connections:
        c.close()
    listener.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--interval", type=float, default=0.001, help="seconds between the client's packets")
    parser.add_argument("--client", type=int, metavar="PORT", help="(internal) be the client")
    options = parser.parse_args()
    if options.client is not None:
        return client(options.client, options.seconds, options.interval)
    import gameloop
    gameloop.set_fps(options.fps)
    for name in gameloop.STRATEGIES:
        bench_strategy(name, options.seconds, options.interval)


if __name__ == "__main__":
    main()
