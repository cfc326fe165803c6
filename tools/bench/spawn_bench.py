"""(b) Tasklets created, run and finished per second, beside greenlet, gevent
and asyncio tasks on the same Python.

Run under `build/bin/shard python` (stackless) and `/usr/bin/python3.11`
(greenlet, gevent, asyncio). Each batch creates N tasks of a trivial function,
runs them all to completion and counts; the best of --repeat batches is
reported, as one JSON line per implementation.
"""

import argparse
import gc
import json
import platform
import time

try:
    import stackless
except ImportError:
    stackless = None


def noop():
    pass


def batch_stackless(n):
    tasklet, run = stackless.tasklet, stackless.run
    for _ in range(n):
        tasklet(noop)()
    run()


def batch_greenlet(n):
    import greenlet
    make = greenlet.greenlet
    for _ in range(n):
        make(noop).switch()


def batch_gevent(n):
    import gevent
    spawn = gevent.spawn
    gevent.joinall([spawn(noop) for _ in range(n)])


def batch_asyncio(n):
    import asyncio

    async def work():
        pass

    async def main():
        create = asyncio.get_running_loop().create_task
        await asyncio.gather(*[create(work()) for _ in range(n)])

    asyncio.run(main())


def measure(batch, n, repeat):
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        batch(n)
        best = min(best, time.perf_counter() - start)
    return n / best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    impls = {"stackless": batch_stackless} if stackless else {
        "greenlet": batch_greenlet, "gevent": batch_gevent, "asyncio": batch_asyncio}
    for name, batch in impls.items():
        rate = measure(batch, options.n, options.repeat)
        print(json.dumps(dict(bench="spawn_run_finish", impl=name, value=round(rate), unit="per_s",
                              n=options.n, python=platform.python_version())), flush=True)


if __name__ == "__main__":
    main()
