"""Tasklet micro-benchmarks: shard's stackless beside greenlet, gevent and asyncio.

Run under `build/bin/shard python` (impl "stackless") and under Debian's
`/usr/bin/python3.11` (impls "greenlet", "gevent", "asyncio"); run_engine_bench.sh
runs both so the figures of one run sit side by side. Each figure is one JSON line
on stdout: {"bench", "impl", "value", "unit", ...details}.

  pingpong  ns per round trip of a message between two tasklets (best of --repeat)
  memory    resident bytes (and page-table bytes) per blocked tasklet, --n of them
  ring      ns per switch while --tasklets of them take turns (stackless.schedule(),
            greenlets switching round a ring, gevent.sleep(0), asyncio.sleep(0)),
            --n switches in all: what each tasklet's own stack costs a switch
            once there are many (under shard, SHARD_TASKLET_STACK_KB sizes them)
"""

import argparse
import gc
import json
import os
import platform
import sys
import time

try:
    import stackless
except ImportError:  # a stock interpreter: the peers are measured instead
    stackless = None

PAGE = os.sysconf("SC_PAGE_SIZE")


def emit(bench, impl, value, unit, **details):
    details.update(python=platform.python_version(), executable=sys.executable)
    print(json.dumps(dict(bench=bench, impl=impl, value=value, unit=unit, **details)), flush=True)


# ---------------------------------------------------------------- ping-pong
# Each function runs n round trips and returns the elapsed nanoseconds. Locals
# bind the bound methods once so the loop measures the switch, not attribute lookup.

def pingpong_stackless(n):
    c1, c2 = stackless.channel(), stackless.channel()
    last = []

    def a():
        send, receive = c1.send, c2.receive
        reply = None
        for i in range(n):
            send(i)
            reply = receive()
        last.append(reply)

    def b():
        send, receive = c2.send, c1.receive
        for _ in range(n):
            send(receive())

    stackless.tasklet(b)()
    stackless.tasklet(a)()
    t0 = time.perf_counter_ns()
    stackless.run()  # returns when both tasklets have finished
    elapsed = time.perf_counter_ns() - t0
    assert last == [n - 1], last  # every message made the round trip
    return elapsed


def pingpong_greenlet(n):
    # The floor for any greenlet-based scheduler: g1 -> g2 -> g1 is one pair,
    # with no queue and no hub in between.
    from greenlet import greenlet

    def f1():
        switch = g2.switch
        for _ in range(n):
            switch()

    def f2():
        switch = g1.switch
        while True:
            switch()

    g1, g2 = greenlet(f1), greenlet(f2)
    t0 = time.perf_counter_ns()
    g1.switch()  # returns when f1 ends; g2 is left suspended and killed on collection
    return time.perf_counter_ns() - t0


def pingpong_gevent(n):
    import gevent
    from gevent.queue import Queue
    q1, q2 = Queue(), Queue()

    def a():
        put, get = q1.put, q2.get
        for i in range(n):
            put(i)
            get()

    def b():
        put, get = q2.put, q1.get
        for _ in range(n):
            put(get())

    t0 = time.perf_counter_ns()
    gevent.joinall([gevent.spawn(b), gevent.spawn(a)])
    return time.perf_counter_ns() - t0


def pingpong_asyncio(n):
    import asyncio

    async def main():
        q1, q2 = asyncio.Queue(), asyncio.Queue()

        async def a():
            put, get = q1.put_nowait, q2.get
            for i in range(n):
                put(i)
                await get()

        async def b():
            put, get = q2.put_nowait, q1.get
            for _ in range(n):
                put(await get())

        t0 = time.perf_counter_ns()
        await asyncio.gather(b(), a())
        return time.perf_counter_ns() - t0

    return asyncio.run(main())


PINGPONG = dict(stackless=pingpong_stackless, greenlet=pingpong_greenlet,
                gevent=pingpong_gevent, asyncio=pingpong_asyncio)
UNIT_NAME = dict(stackless="round trip (channel)", greenlet="switch pair (raw)",
                 gevent="round trip (gevent.queue.Queue)", asyncio="round trip (asyncio.Queue)")


def bench_pingpong(args):
    for impl in args.impl:
        fn = PINGPONG[impl]
        fn(max(args.n // 10, 1))  # warm up: code paths, allocator, stack pool
        times = [fn(args.n) / args.n for _ in range(args.repeat)]
        emit("pingpong", impl, round(min(times), 1), "ns/round-trip", what=UNIT_NAME[impl],
             n=args.n, repeat=args.repeat, all_ns=[round(t, 1) for t in times])


# --------------------------------------------------------------------- ring
# Each function lets `tasklets` of them take `rounds` turns each and returns
# (elapsed ns, switches).

def ring_stackless(tasklets, rounds):
    def body():
        schedule = stackless.schedule
        for _ in range(rounds):
            schedule()

    for _ in range(tasklets):
        stackless.tasklet(body)()
    t0 = time.perf_counter_ns()
    stackless.run()  # returns when every tasklet has taken its turns
    return time.perf_counter_ns() - t0, tasklets * rounds


def ring_greenlet(tasklets, rounds):
    import greenlet

    main = greenlet.getcurrent()
    ring = []
    switches = [0]

    def body(after):
        main.switch()  # started: back until the ring begins (one started from another nests its depth)
        for _ in range(rounds):
            switches[0] += 1
            ring[after].switch()

    ring.extend(greenlet.greenlet(body) for _ in range(tasklets))
    for i, g in enumerate(ring):
        g.switch((i + 1) % tasklets)
    t0 = time.perf_counter_ns()
    ring[0].switch()  # back here when the first one has taken its turns (the rest are left suspended)
    return time.perf_counter_ns() - t0, switches[0]


def ring_gevent(tasklets, rounds):
    import gevent

    def body():
        sleep = gevent.sleep
        for _ in range(rounds):
            sleep(0)

    group = [gevent.spawn(body) for _ in range(tasklets)]
    t0 = time.perf_counter_ns()
    gevent.joinall(group)
    return time.perf_counter_ns() - t0, tasklets * rounds


def ring_asyncio(tasklets, rounds):
    import asyncio

    async def body():
        sleep = asyncio.sleep
        for _ in range(rounds):
            await sleep(0)

    async def main():
        t0 = time.perf_counter_ns()
        await asyncio.gather(*(body() for _ in range(tasklets)))
        return time.perf_counter_ns() - t0

    return asyncio.run(main()), tasklets * rounds


RING = dict(stackless=ring_stackless, greenlet=ring_greenlet, gevent=ring_gevent, asyncio=ring_asyncio)


def bench_ring(args):
    rounds = max(1, args.n // args.tasklets)
    for impl in args.impl:
        fn = RING[impl]
        fn(args.tasklets, 2)  # warm up: stacks from the pool, the allocator's arenas
        runs = [fn(args.tasklets, rounds) for _ in range(args.repeat)]
        times = [elapsed / switches for elapsed, switches in runs]
        emit("ring", impl, round(min(times), 1), "ns/switch", tasklets=args.tasklets, switches=runs[0][1],
             repeat=args.repeat, stack_kb=os.environ.get("SHARD_TASKLET_STACK_KB", "default") if impl == "stackless"
             else None, all_ns=[round(t, 1) for t in times])


# ------------------------------------------------------------------- memory
# Each function creates n blocked items, calls `measure()` while they are all
# blocked, releases them, and returns how many finished. Items wait on one shared
# channel / event so the figure is the cost of the blocked tasklet itself.

def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def snapshot():
    t = time.perf_counter()  # before gc.collect(): create_s/release_s exclude collection time
    gc.collect()
    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * PAGE
    return dict(rss=rss, pte=status_kb("VmPTE") * 1024, t=t)


def memory_stackless(n, measure):
    ch = stackless.channel()
    done = [0]

    def waiter():
        ch.receive()
        done[0] += 1

    tasklets = [stackless.tasklet(waiter)() for _ in range(n)]
    stackless.run()  # each runs until it blocks on receive; run() returns when none is runnable
    assert ch.balance == -n, ch.balance
    measure()
    for _ in range(n):
        ch.send(None)
    stackless.run()
    assert not any(t.alive for t in tasklets)
    return done[0]


def memory_greenlet(n, measure):
    from greenlet import getcurrent, greenlet
    hub = getcurrent()
    done = [0]

    def waiter():
        hub.switch()  # suspended mid-function, as a greenlet blocked in a hub is
        done[0] += 1

    greenlets = [greenlet(waiter) for _ in range(n)]
    for g in greenlets:
        g.switch()
    measure()
    for g in greenlets:
        g.switch()
    assert all(g.dead for g in greenlets)
    return done[0]


def memory_asyncio(n, measure):
    import asyncio
    done = [0]

    async def waiter(ev):
        await ev.wait()
        done[0] += 1

    async def main():
        ev = asyncio.Event()
        tasks = [asyncio.create_task(waiter(ev)) for _ in range(n)]
        await asyncio.sleep(0)  # every task runs up to its await
        measure()
        ev.set()
        await asyncio.gather(*tasks)

    asyncio.run(main())
    return done[0]


MEMORY = dict(stackless=memory_stackless, greenlet=memory_greenlet, asyncio=memory_asyncio)


def bench_memory(args):
    # One impl per process: memory freed by one impl stays in the allocator and
    # would make the next one look cheaper.
    if len(args.impl) != 1:
        sys.exit("memory: give exactly one --impl (one per process)")
    impl = args.impl[0]
    snaps = [snapshot()]
    done = MEMORY[impl](args.n, lambda: snaps.append(snapshot()))
    snaps.append(snapshot())
    before, blocked, after = snaps
    if done != args.n:
        sys.exit(f"memory/{impl}: only {done} of {args.n} finished")
    common = dict(n=args.n, create_s=round(blocked["t"] - before["t"], 2),
                  release_s=round(after["t"] - blocked["t"], 2),
                  rss_before_mb=round(before["rss"] / 2**20, 1),
                  rss_blocked_mb=round(blocked["rss"] / 2**20, 1))
    emit("memory", impl, round((blocked["rss"] - before["rss"]) / args.n), "bytes/blocked (RSS)", **common)
    emit("memory_pte", impl, round((blocked["pte"] - before["pte"]) / args.n), "bytes/blocked (VmPTE)",
         pte_blocked_mb=round(blocked["pte"] / 2**20, 1), n=args.n)


def main():
    default_impls = ["stackless"] if stackless else ["greenlet", "gevent", "asyncio"]
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("bench", choices=["pingpong", "memory", "ring"])
    p.add_argument("--impl", action="append", choices=sorted(PINGPONG),
                   help="repeatable; default: %s" % ",".join(default_impls))
    p.add_argument("--n", type=int, help="round trips (default 100000) / blocked tasklets (default 100000)"
                   " / switches (default 100000)")
    p.add_argument("--tasklets", type=int, default=1000, help="ring: how many take turns (default 1000)")
    p.add_argument("--repeat", type=int, default=5, help="pingpong repetitions; the best is reported")
    args = p.parse_args()
    args.n = args.n or 100_000
    if args.impl is None:
        args.impl = default_impls[:1] if args.bench == "memory" else default_impls
    if "stackless" in args.impl and stackless is None:
        sys.exit("impl stackless needs `shard python`")
    {"pingpong": bench_pingpong, "memory": bench_memory, "ring": bench_ring}[args.bench](args)


if __name__ == "__main__":
    main()
