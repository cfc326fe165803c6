"""Dispatch strategies under load, and off-thread calls, inside the game loop.

Run: build/bin/shard python tools/bench/dispatch_bench.py [--seconds 3] [--fps 30]

  strategies   (d) for each strategy: the main thread saturated by 50 Python
               tasklets that each compute ~1 ms between switches, while 64
               requester tasklets keep 4 worker threads (SHARD_WORKERS_MAX=4)
               completing requests at a steady rate (each request blocks its
               worker ~2 ms). Dispatch latency
               (completion -> runnable) and run latency (completion -> running)
               p50/p99/max, completions/s, interpreter-lock acquisitions per
               drain, frame overruns.
  call_in_thread  (e) 100 tasklets each call call_in_thread(time.sleep, 0.2);
               total time and frame overruns.

One JSON line per figure on stdout.
"""

import argparse
import json
import os
import platform
import time

import gameloop
import stackless
import uthread

BUSY_TASKLETS = 50
# Enough requesters that a 3 s run gives a few thousand completions (a p99 that
# is not just the maximum), at a rate 4 workers keep up with: each request
# blocks its worker ~2 ms, and a woken requester waits its round-robin turn
# behind the busy tasklets before it asks again.
REQUESTERS = 64


def emit(bench, **fields):
    print(json.dumps(dict(bench=bench, impl="shard", python=platform.python_version(), **fields)), flush=True)


def spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def run_loop_for(seconds, on_done):
    """Runs the game loop until `seconds` have passed, then calls on_done()."""
    start = time.monotonic()

    def stopper(frame, dt):
        if time.monotonic() - start >= seconds:
            gameloop.remove_tick(stopper)
            gameloop.stop()

    gameloop.add_tick(stopper)
    before = gameloop.stats()["overruns"] if gameloop.stats()["frame"] else 0
    gameloop.run()
    on_done(gameloop.stats()["overruns"] - before)


def bench_strategy(name, seconds):
    stop = [False]

    def busy():
        while not stop[0]:
            spin(0.001)
            stackless.schedule()

    def requester():
        while not stop[0]:
            _engine.sleep_in_worker(0.002)

    workers = [uthread.new(busy) for _ in range(BUSY_TASKLETS)]
    workers += [uthread.new(requester) for _ in range(REQUESTERS)]
    gameloop.set_dispatch_strategy(name)
    gameloop.reset_dispatch_stats()

    def report(overruns):
        s = gameloop.dispatch_stats()[name]
        drains = max(s["drains"], 1)
        emit("dispatch_strategy", strategy=name, seconds=seconds,
             dispatch_p50_us=s["dispatch_latency"]["p50_us"], dispatch_p99_us=s["dispatch_latency"]["p99_us"],
             dispatch_max_us=s["dispatch_latency"]["max_us"],
             run_p50_us=s["run_latency"]["p50_us"], run_p99_us=s["run_latency"]["p99_us"],
             run_max_us=s["run_latency"]["max_us"],
             completions_per_s=round(s["completions"] / seconds),
             lock_acquisitions=s["lock_acquisitions"], drains=s["drains"],
             lock_acquisitions_per_drain=round(s["lock_acquisitions"] / drains, 3),
             frame_overruns=overruns, workers=_engine.worker_count())

    run_loop_for(seconds, report)
    stop[0] = True
    for t in workers:
        t.kill()


def bench_call_in_thread():
    gameloop.set_dispatch_strategy("main_loop")
    done = []

    def caller():
        gameloop.call_in_thread(time.sleep, 0.2)
        done.append(time.monotonic())

    start = time.monotonic()
    for _ in range(100):
        uthread.new(caller)
    result = {}

    def stopper(frame, dt):
        if len(done) == 100:
            gameloop.remove_tick(stopper)
            gameloop.stop()

    gameloop.add_tick(stopper)
    before = gameloop.stats()["overruns"]
    gameloop.run()
    emit("call_in_thread_100x_sleep_0.2", total_s=round(max(done) - start, 4),
         frame_overruns=gameloop.stats()["overruns"] - before, fps=gameloop.fps())


import _engine  # noqa: E402  (after the helpers: sleep_in_worker is the plain C++ request)


def main():
    # The strategies are compared with 4 workers; call_in_thread needs 100, so
    # it runs in its own process (run_engine_bench.sh runs both).
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("what", nargs="*", default=["call_in_thread", "strategies"])
    options = parser.parse_args()
    gameloop.set_fps(options.fps)
    if "strategies" in options.what and "call_in_thread" not in options.what:
        os.environ["SHARD_WORKERS_MAX"] = "4"  # read when the pool starts
    if "call_in_thread" in options.what:
        bench_call_in_thread()
    if "strategies" in options.what:
        for name in gameloop.STRATEGIES:
            bench_strategy(name, options.seconds)


if __name__ == "__main__":
    main()
