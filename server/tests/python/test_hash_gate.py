"""hash_gate.py: password hashes run a few at a time on worker threads, the
rest wait in arrival order, and past the queue's bound a hash is refused at
once with a retry time. The hashed function here stands in for scrypt: it
counts how many run at once on the workers and sleeps."""

import os
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "engine", "tests", "python"))

import hash_gate  # noqa: E402
import support  # noqa: E402
import uthread  # noqa: E402
from support import StacklessTestCase, run_in_tasklet  # noqa: E402

setUpModule, tearDownModule = support.setUpModule, support.tearDownModule


class Workers:
    """A stand-in for a hash: records the most calls running at once on the worker threads."""

    def __init__(self, seconds=0.05):
        self.seconds = seconds
        self.lock = threading.Lock()
        self.running = self.most = 0
        self.order = []

    def __call__(self, tag):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.order.append(tag)
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1
        return tag


def storm(gate, work, count):
    """`count` tasklets started together, each hashing through `gate`: their
    outcomes in start order, ("ok", tag) or ("raised", the exception)."""
    outcomes = [None] * count

    def one(i):
        try:
            outcomes[i] = ("ok", gate.run(work, i))
        except Exception as e:  # noqa: BLE001 (the outcome under test)
            outcomes[i] = ("raised", e)
    uthread.parallel([lambda i=i: one(i) for i in range(count)], timeout=60)
    return outcomes


class HashGate(StacklessTestCase):

    def test_no_more_than_the_limit_run_at_once_and_every_hash_completes(self):
        work = Workers()
        outcomes = run_in_tasklet(storm, hash_gate.HashGate(concurrent=2, queue=100), work, 12)[1]
        self.assertEqual(outcomes, [("ok", i) for i in range(12)])
        self.assertEqual(work.most, 2)

    def test_waiting_hashes_run_in_arrival_order(self):
        work = Workers(seconds=0.01)
        run_in_tasklet(storm, hash_gate.HashGate(concurrent=1, queue=100), work, 8)
        self.assertEqual(work.order, list(range(8)))

    def test_past_the_queue_a_hash_is_refused_at_once_with_a_retry_time(self):
        work = Workers()
        started = time.monotonic()
        how, outcomes = run_in_tasklet(storm, hash_gate.HashGate(concurrent=1, queue=2), work, 6)
        self.assertEqual(how, "ok", outcomes)
        self.assertEqual(outcomes[:3], [("ok", 0), ("ok", 1), ("ok", 2)])  # one running, two waiting
        for how, error in outcomes[3:]:
            self.assertEqual(how, "raised")
            self.assertIsInstance(error, hash_gate.Busy)
            self.assertRegex(str(error), r"^2 password checks waiting \(at most 2\), retry in \d+ s$")
            self.assertGreaterEqual(error.retry_after, 1)
        self.assertEqual(work.order, [0, 1, 2])  # the refused never reached a worker
        self.assertLess(time.monotonic() - started, 30)

    def test_admit_refuses_only_when_a_hash_would_be(self):
        gate = hash_gate.HashGate(concurrent=1, queue=1)
        gate.admit()  # a free turn
        work = Workers(seconds=0.2)
        first = uthread.new(lambda: gate.run(work, 0))
        second = uthread.new(lambda: gate.run(work, 1))
        self.addCleanup(first.kill)
        self.addCleanup(second.kill)
        uthread.Yield()  # both in: one running, one waiting
        with self.assertRaisesRegex(hash_gate.Busy, r"^1 password checks waiting \(at most 1\)"):
            gate.admit()
        while gate.running or gate.slots.waiting:
            uthread.Sleep(0.01)
        gate.admit()

    def test_the_default_leaves_half_the_cpus_to_the_rest(self):
        cpus = len(os.sched_getaffinity(0))
        self.assertEqual(hash_gate.HashGate().concurrent, max(1, cpus // 2))
        self.assertEqual(hash_gate.HashGate(concurrent=0).concurrent, max(1, cpus // 2))

    def test_a_bad_size_is_refused(self):
        for concurrent, queue in ((-1, 10), (1, -1)):
            with self.subTest(concurrent=concurrent, queue=queue):
                with self.assertRaisesRegex(ValueError, "a hash gate takes 1 or more hashes at once"):
                    hash_gate.HashGate(concurrent, queue)

    def test_an_error_of_the_hash_gives_its_turn_back(self):
        gate = hash_gate.HashGate(concurrent=1, queue=0)

        def fails(_):
            raise ValueError("not a stored password hash")
        how, error = run_in_tasklet(gate.run, fails, 0)
        self.assertEqual((how, type(error)), ("raised", ValueError))
        self.assertEqual(run_in_tasklet(gate.run, Workers(0), 7), ("ok", 7))


if __name__ == "__main__":
    unittest.main()
