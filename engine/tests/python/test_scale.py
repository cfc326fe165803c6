"""Many live tasklets at once: 100,000 blocked on channels, then released."""

import json
import sys
import textwrap
import unittest

import stackless
from support import StacklessTestCase, run_child
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)

COUNT = 100_000


class ScaleTest(StacklessTestCase):
    deadline_s = 90.0

    def test_100000_tasklets_block_on_a_channel_and_all_finish(self):
        c = stackless.channel()
        c.preference = 1  # the sender does not switch to each receiver
        finished = [0]

        def worker():
            value = c.receive()
            finished[0] += value

        tasklets = [stackless.tasklet(worker)() for _ in range(COUNT)]
        stackless.run()
        self.assertEqual(c.balance, -COUNT)
        self.assertTrue(all(t.blocked for t in tasklets))
        self.assertEqual(finished[0], 0)

        for _ in range(COUNT):
            c.send(1)
        self.assertEqual(c.balance, 0)
        stackless.run()
        self.assertEqual(finished[0], COUNT)
        self.assertFalse(any(t.alive for t in tasklets))

    def test_100000_tasklets_each_blocked_on_its_own_channel(self):
        channels = [stackless.channel() for _ in range(COUNT)]
        got = []

        def worker(inbox):
            got.append(inbox.receive())

        for inbox in channels:
            stackless.tasklet(worker)(inbox)
        stackless.run()
        self.assertEqual(sum(1 for ch in channels if ch.balance == -1), COUNT)

        for i, inbox in enumerate(channels):
            inbox.send(i)  # preference -1: each worker finishes right away
        self.assertEqual(len(got), COUNT)
        self.assertEqual(sum(got), COUNT * (COUNT - 1) // 2)
        self.assertEqual(stackless.getruncount(), 1)


# A child process that runs out of address space for stacks: RLIMIT_AS leaves
# room for Python but not for a second slab of 256 stacks.
EXHAUSTION_CHILD = textwrap.dedent("""
    import json, resource, stackless

    def vm_bytes():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

    ch = stackless.channel()
    started = []

    def waiter(i):
        started.append(i)
        ch.receive()

    def run_collecting_errors():
        errors = []
        while True:
            try:
                stackless.run()
                return errors
            except MemoryError as e:
                errors.append(str(e))

    stackless.tasklet(waiter)(-1)
    stackless.run()  # the first slab of stacks is mapped now
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + (512 << 20), resource.RLIM_INFINITY))
    out = {}

    # Tasklets that block: 255 more fit in the slab, the other 45 cannot start.
    blockers = [stackless.tasklet(waiter)(i) for i in range(300)]
    errors = run_collecting_errors()
    out["blocked"] = -ch.balance
    out["errors"] = len(errors)
    out["error"] = errors[0]
    out["abandoned_alive"] = sum(t.alive for t in blockers[255:])

    # A tasklet that finishes while the next one cannot get a stack (its own
    # goes back only after it has left it).
    ch.send(None)  # one block free again
    done = []
    finisher = stackless.tasklet(done.append)("finisher")
    after = stackless.tasklet(done.append)("after")
    out["finish_errors"] = len(run_collecting_errors())
    out["done"] = done
    out["after_alive"] = after.alive

    # The node goes on: once the waiters are released, new tasklets start.
    while ch.balance < 0:
        ch.send(None)
    late = []
    for i in range(100):
        stackless.tasklet(late.append)(i)
    stackless.run()
    out["late"] = len(late)
    print(json.dumps(out))
""")


# A tasklet that cannot get a stack is reported (its MemoryError built, its
# arguments dropped) only once the switch away from the fiber that picked it is
# complete: a finalizer of its arguments that switches runs in a live tasklet,
# and the error still reaches run() (RUN), the blocked main tasklet (BLOCKED)
# or the game loop's log (LOOP).
UNSTARTABLE_FINALIZER_CHILD = textwrap.dedent("""
    import gc, json, logging, resource, sys, stackless, _engine, gameloop

    def vm_bytes():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024

    ch = stackless.channel()

    def waiter():
        ch.receive()

    stackless.tasklet(waiter)()
    stackless.run()  # the first slab of stacks is mapped now
    resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + (512 << 20), resource.RLIM_INFINITY))
    for _ in range(255):
        stackless.tasklet(waiter)()
    stackless.run()
    out = {"blocked": -ch.balance}

    finalized_in = []

    class Nasty:
        def __del__(self):
            finalized_in.append(stackless.current.alive)
            stackless.schedule()

    class Capture(logging.Handler):
        def __init__(self):
            super().__init__(logging.DEBUG)
            self.texts = []

        def emit(self, record):
            self.texts.append(self.format(record))

    ch.send(None)  # one stack block free
    done = []
    stackless.tasklet(done.append)("finisher")  # its block is still in use when the next is picked
    stackless.tasklet(lambda x: None)(Nasty())
    errors = []
    if sys.argv[1] == "RUN":
        try:
            stackless.run()
        except MemoryError as e:
            errors.append(str(e))
        stackless.run()
    elif sys.argv[1] == "BLOCKED":
        try:
            stackless.channel().send(Nasty())  # the error wakes main; what it sent is dropped
        except MemoryError as e:
            errors.append(str(e))
    else:
        capture = Capture()
        logging.getLogger("shard.loop").addHandler(capture)
        gameloop.add_tick(lambda frame, dt: frame >= 3 and gameloop.stop())
        gameloop.run()
        errors = [text for text in capture.texts if "MemoryError" in text]
    out["done"] = done
    out["errors"] = errors
    out["finalized_in_alive"] = finalized_in

    while ch.balance < 0:
        ch.send(None)
    stackless.run()
    gc.collect()
    out["stack_blocks"] = _engine.resource_counts()["stack_blocks"]
    print(json.dumps(out))
""")


class StackExhaustionTest(StacklessTestCase):

    def test_tasklets_that_cannot_get_a_stack_fail_with_memory_error_and_the_rest_go_on(self):
        result = run_child([sys.executable, "-c", EXHAUSTION_CHILD])
        self.assertEqual(result.returncode, 0, result.stderr)
        out = json.loads(result.stdout)
        self.assertEqual(out["blocked"], 256)
        self.assertEqual(out["errors"], 45)
        self.assertIn("cannot start a tasklet", out["error"])
        self.assertIn("Cannot allocate memory", out["error"])
        self.assertEqual(out["abandoned_alive"], 0)
        self.assertEqual(out["finish_errors"], 1)
        self.assertEqual(out["done"], ["finisher"])
        self.assertFalse(out["after_alive"])
        self.assertEqual(out["late"], 100)

    def check_unstartable_reported_after_the_switch(self, mode, finalizers=1):
        result = run_child([sys.executable, "-c", UNSTARTABLE_FINALIZER_CHILD, mode])
        self.assertEqual(result.returncode, 0, result.stderr)
        out = json.loads(result.stdout)
        self.assertEqual(out["blocked"], 256)
        self.assertEqual(out["done"], ["finisher"])
        self.assertEqual(out["finalized_in_alive"], [True] * finalizers)
        self.assertEqual(len(out["errors"]), 1, out["errors"])
        self.assertIn("cannot start a tasklet", out["errors"][0])
        self.assertEqual(out["stack_blocks"], 0)

    def test_a_finalizer_that_switches_while_an_unstartable_tasklet_is_dropped_runs_in_a_live_tasklet(self):
        self.check_unstartable_reported_after_the_switch("RUN")

    def test_a_value_the_blocked_main_tasklet_was_sending_is_dropped_after_the_switch(self):
        self.check_unstartable_reported_after_the_switch("BLOCKED", finalizers=2)

    def test_under_the_game_loop_an_unstartable_tasklet_is_logged_after_the_switch(self):
        self.check_unstartable_reported_after_the_switch("LOOP")


if __name__ == "__main__":
    unittest.main()
