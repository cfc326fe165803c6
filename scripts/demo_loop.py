"""The game loop at work: `build/bin/shard run scripts/demo_loop.py` (Ctrl-C stops it).

A few services sleep, yield and wait on off-thread work while the loop runs at
its fixed frame rate; once a second a tick hook prints the last frame's figures.
"""
import time

import gameloop
import uthread


def heartbeat():
    beats = 0
    try:
        while True:
            uthread.Sleep(0.5)
            beats += 1
    finally:
        print(f"heartbeat service stopped after {beats} beats")


def lookup():
    while True:
        # Blocking work runs on a worker thread; only this tasklet waits.
        gameloop.call_in_thread(time.sleep, 0.2)
        uthread.BeNice()


@gameloop.tick
def report(frame, dt):
    if frame % round(1 / dt) == 0:
        s = gameloop.stats()
        print(f"frame {s['frame']}: {s['frame_ms']:.1f} ms (idle {s['wait_ms']:.1f}), "
              f"{s['alive']} tasklets alive, {s['switches']} switches, {s['overruns']} overruns, "
              f"dispatch={gameloop.dispatch_strategy()}", flush=True)


gameloop.register_service(uthread.new(heartbeat))
gameloop.register_service(uthread.new(lookup))
print("game loop running; Ctrl-C to stop", flush=True)
