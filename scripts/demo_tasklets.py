"""A small tour of the engine's tasklets: run with `build/bin/shard python scripts/demo_tasklets.py`.

A producer and a few consumers talk over a channel, a busy tasklet is stopped
by the watchdog, and a few thousand tasklets wait at once.
"""
import time

import stackless


def producer(jobs, count, consumers):
    for n in range(count):
        jobs.send(n)
    for _ in range(consumers):
        jobs.send(None)  # one "no more work" per consumer


def consumer(name, jobs, results):
    while (job := jobs.receive()) is not None:
        results.append((name, job * job))
        stackless.schedule()


def busy_loop():
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pass


def main():
    jobs = stackless.channel()
    results = []
    names = ("ann", "bob", "cid")
    stackless.tasklet(producer)(jobs, 9, len(names))
    for name in names:
        stackless.tasklet(consumer)(name, jobs, results)
    stackless.run()
    print("consumers took turns:", results)

    busy = stackless.tasklet(busy_loop)()
    started = time.monotonic()
    interrupted = stackless.run(timeout=50_000)  # ticks are microseconds
    print(f"watchdog interrupted the busy tasklet after {1000 * (time.monotonic() - started):.0f} ms:",
          interrupted is busy)
    busy.kill()

    gate = stackless.channel()
    waiters = [stackless.tasklet(gate.receive)() for _ in range(10_000)]
    stackless.run()
    print("tasklets blocked on one channel:", -gate.balance)
    gate.send_sequence(range(len(waiters)))
    print("all released:", not any(t.alive for t in waiters))


if __name__ == "__main__":
    main()
