"""The reactor seam: tasklets waiting for asynchronous operations on the IO threads.

The contract is the header comment of engine/include/shard/engine/await_completion.h:
a tasklet parked in await_completion() blocks only itself; killing it, its
deadline and stopping the IO threads cancel the operation itself; the
completion wakes it through the dispatch strategy in force, in completion
order; nothing on an IO thread takes the interpreter lock except under
worker_acquires_gil.

The operation is _engine.io_timer(seconds, timeout=None): an Asio steady_timer
waited for on an IO thread. _engine.io_stats() counts what reached the timers
themselves (timers_aborted: ended by timer.cancel()) and the interpreter-lock
acquisitions on IO threads.
"""

import errno
import textwrap
import time
import unittest

import _engine
import gameloop
import stackless
import uthread
from support import StacklessTestCase, SHARD_BINARY, result_in_new_thread, run_child, wait_until
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)
from test_gameloop import LoopTestCase

TaskletExit = stackless.TaskletExit
STRATEGIES = gameloop.STRATEGIES


def io_count(name):
    return _engine.io_stats()[name]


def wait_for_aborted(before, what):
    """stackless.run() waits for the cancelled request to come back; then the timer must have seen its cancel."""
    stackless.run()
    wait_until(lambda: io_count("timers_aborted") > before, what=what)


class ConcurrencyTest(StacklessTestCase):

    def test_a_hundred_tasklets_on_io_timers_take_the_longest_delay_not_the_sum(self):
        done = []

        def waiter(i):
            _engine.io_timer(0.2)
            done.append(i)

        start = time.monotonic()
        for i in range(100):
            stackless.tasklet(waiter)(i).run()  # up to its wait
        # All hundred in flight at once, not one after the other (which would
        # take the sum, 20 s): counted, not timed, so a loaded machine passes.
        self.assertEqual(io_count("waits"), 100)
        stackless.run()
        self.assertEqual(sorted(done), list(range(100)))
        self.assertGreaterEqual(time.monotonic() - start, 0.19)

    def test_run_waits_for_io_in_flight_like_for_sleepers(self):
        done = []
        stackless.tasklet(lambda: (_engine.io_timer(0.05), done.append("io")))()
        stackless.run()  # returns only once the tasklet woken by the completion has run
        self.assertEqual(done, ["io"])

    def test_the_main_tasklet_may_wait_on_io_too(self):
        start = time.monotonic()
        self.assertIsNone(_engine.io_timer(0.05))
        self.assertGreaterEqual(time.monotonic() - start, 0.045)

    def test_a_tasklet_of_another_thread_waits_on_io(self):
        def other_thread():
            start = time.monotonic()
            _engine.io_timer(0.05)  # the thread's main tasklet: the IO thread wakes it
            return time.monotonic() - start

        self.assertGreaterEqual(result_in_new_thread(other_thread), 0.045)

    def test_running_a_waiting_tasklet_by_hand_does_not_end_its_wait(self):
        done = []
        t = stackless.tasklet(lambda: (_engine.io_timer(0.1), done.append(time.monotonic())))()
        start = time.monotonic()
        t.run()  # up to its wait
        t.run()  # resumed by hand: it must go back to waiting
        self.assertEqual(done, [])
        stackless.run()
        self.assertGreaterEqual(done[0] - start, 0.09)

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            _engine.io_timer(float("nan"))
        with self.assertRaises(TypeError):
            _engine.io_timer()


class ResolveTest(StacklessTestCase):
    """io_resolve: the typed-result path (await_result) with Asio's resolver."""

    def test_numeric_hosts_resolve_to_themselves_with_the_port(self):
        self.assertEqual(_engine.io_resolve("127.0.0.1", 8080), [("127.0.0.1", 8080)])
        self.assertEqual(_engine.io_resolve("::1", "443", timeout=5), [("::1", 443)])

    def test_many_tasklets_resolve_at_once_without_the_lock_on_io_threads(self):
        locks = io_count("lock_acquisitions")
        found = {}
        for i in range(20):
            stackless.tasklet(lambda i=i: found.setdefault(i, _engine.io_resolve("127.0.0.1", 1000 + i)))()
        stackless.run()
        self.assertEqual(found, {i: [("127.0.0.1", 1000 + i)] for i in range(20)})
        self.assertEqual(io_count("lock_acquisitions"), locks)

    def test_an_unknown_name_is_an_os_error_with_the_resolvers_reason(self):
        with self.assertRaises(OSError) as caught:
            _engine.io_resolve("no-such-host.invalid", 80, timeout=10)
        self.assertIn("io_resolve", str(caught.exception))


class CancellationTest(StacklessTestCase):

    def test_killing_a_waiting_tasklet_cancels_its_timer_at_once(self):
        seen = []

        def victim():
            try:
                _engine.io_timer(30)
                seen.append("woke")
            except TaskletExit:
                seen.append("TaskletExit")
                raise

        aborted, cancellations = io_count("timers_aborted"), io_count("cancellations")
        t = stackless.tasklet(victim)()
        t.run()  # up to its wait
        self.assertEqual(io_count("waits"), 1)
        start = time.monotonic()
        t.kill()
        # Waiting for the timer would take 30 s; a loaded machine may stall us for seconds.
        self.assertLess(time.monotonic() - start, 10, "kill waited for the timer")
        self.assertEqual(seen, ["TaskletExit"])
        self.assertEqual(io_count("cancellations"), cancellations + 1)
        wait_for_aborted(aborted, "the killed tasklet's timer cancelled")
        self.assertEqual(io_count("waits"), 0)
        self.assertEqual(_engine.resource_counts()["requests_in_flight"], 0)

    def test_the_deadline_raises_timeout_error_and_cancels_the_timer(self):
        aborted = io_count("timers_aborted")
        start = time.monotonic()
        with self.assertRaises(TimeoutError) as caught:
            _engine.io_timer(30, timeout=0.05)
        self.assertLess(time.monotonic() - start, 10, "the timeout waited for the 30 s timer")
        self.assertIn("io_timer", str(caught.exception))
        wait_for_aborted(aborted, "the timed-out timer cancelled")

    def test_a_timer_within_its_deadline_returns(self):
        self.assertIsNone(_engine.io_timer(0.01, timeout=5))

    def test_an_exception_thrown_into_a_waiting_tasklet_cancels_its_timer(self):
        got = []

        def victim():
            try:
                _engine.io_timer(30)
            except KeyError as e:
                got.append(e)

        aborted = io_count("timers_aborted")
        t = stackless.tasklet(victim)()
        t.run()
        t.throw(KeyError("stop waiting"))
        self.assertEqual(len(got), 1)
        wait_for_aborted(aborted, "the interrupted tasklet's timer cancelled")


class ShutdownTest(StacklessTestCase):

    def tearDown(self):
        if not _engine.io_stats()["running"]:
            _engine.io_start()
        super().tearDown()

    def test_stopping_the_io_threads_ends_the_waits_in_flight_with_ecanceled(self):
        errors = []

        def waiter():
            try:
                _engine.io_timer(30)
            except OSError as e:
                errors.append(e.errno)

        tasklets = [stackless.tasklet(waiter)() for _ in range(5)]
        for t in tasklets:
            t.run()  # each up to its wait
        self.assertEqual(io_count("waits"), 5)
        start = time.monotonic()
        _engine.io_stop()
        self.assertLess(time.monotonic() - start, 10, "stop waited for the 30 s timers")
        self.assertEqual(io_count("threads"), 0)
        stackless.run()
        self.assertEqual(errors, [errno.ECANCELED] * 5)
        self.assertFalse(any(t.alive for t in tasklets))

    def test_waiting_while_stopped_is_ecanceled_and_a_restart_serves_again(self):
        _engine.io_stop()
        with self.assertRaises(OSError) as caught:
            _engine.io_timer(0.01)
        self.assertEqual(caught.exception.errno, errno.ECANCELED)
        _engine.io_start(threads=3)
        self.assertEqual(io_count("threads"), 3)
        self.assertIsNone(_engine.io_timer(0.01))
        _engine.io_stop()
        _engine.io_start()

    def test_the_process_exits_promptly_with_io_waits_in_flight(self):
        script = textwrap.dedent("""
            import _engine, stackless
            def waiter(i):
                try:
                    _engine.io_timer(60)
                finally:
                    print("finally", i, flush=True)
            for i in range(3):
                stackless.tasklet(waiter)(i).run()
            print("exiting", flush=True)
        """)
        start = time.monotonic()
        child = run_child([SHARD_BINARY, "python", "-c", script])
        self.assertEqual(child.returncode, 0, child.stderr)
        self.assertLess(time.monotonic() - start, 10)
        self.assertEqual(sorted(child.stdout.split("\n")[1:4]), ["finally 0", "finally 1", "finally 2"])


class BatchTest(StacklessTestCase):

    def tearDown(self):
        gameloop.set_dispatch_strategy("main_loop")
        _engine.io_stop()
        _engine.io_start()
        super().tearDown()

    def test_one_lock_acquisition_wakes_a_whole_batch_of_io_completions(self):
        # Under worker_acquires_gil the IO thread takes the interpreter lock to
        # wake the tasklets. Twenty timers expire while the main thread holds
        # the lock: the IO thread completes them in a batch or two and takes
        # the lock once per batch, not once per completion (each acquisition
        # waits for the main thread's switch interval).
        _engine.io_stop()
        _engine.io_start(threads=1)
        gameloop.set_dispatch_strategy("worker_acquires_gil")
        locks = _engine.io_stats()["lock_acquisitions"]
        done = []
        for t in [stackless.tasklet(lambda: (_engine.io_timer(0.01), done.append(1)))() for _ in range(20)]:
            t.run()  # up to its wait
        end = time.monotonic() + 0.1
        while time.monotonic() < end:  # Python holding the lock, past every deadline
            pass
        stackless.run()
        self.assertEqual(len(done), 20)
        self.assertLessEqual(_engine.io_stats()["lock_acquisitions"] - locks, 4)


class StrategyTest(LoopTestCase):
    # Started in this order; they complete in the order of their delays.
    DELAYS = [0.20, 0.04, 0.16, 0.08, 0.12]

    def setUp(self):
        super().setUp()
        # One IO thread per timer (they are handed out in turn): under
        # worker_acquires_gil an IO thread waits for the interpreter lock after
        # a completion, and hold_for_completions() keeps the lock until all
        # have completed, so no thread may have a second timer to complete.
        _engine.io_stop()
        _engine.io_start(threads=len(self.DELAYS))

    def tearDown(self):
        _engine.io_stop()
        _engine.io_start()
        super().tearDown()

    def test_each_strategy_wakes_the_right_tasklets_in_completion_order_inside_the_loop(self):
        gameloop.set_long_run_limit(60_000)  # the hold below is meant to be long
        for strategy in STRATEGIES:
            with self.subTest(strategy=strategy):
                gameloop.set_dispatch_strategy(strategy)
                gameloop.reset_dispatch_stats()
                locks = io_count("lock_acquisitions")
                resumed = []

                def waiter(i):
                    _engine.io_timer(self.DELAYS[i])
                    resumed.append(i)

                tasklets = [self.spawn(waiter, i) for i in range(len(self.DELAYS))]
                completed = []
                # Spawned last: runs once every timer started, takes the
                # completion order from the queue and lets them all be
                # dispatched together (a loaded machine can stall a start or an
                # IO thread past the gaps between the delays: they suggest an
                # order, the queue holds the real one).
                self.spawn(lambda: completed.extend(_engine.hold_for_completions(len(self.DELAYS))))
                self.run_loop(lambda n: not any(t.alive for t in tasklets))
                self.assertEqual(self.errors, [])
                self.assertEqual(resumed, [tasklets.index(t) for t in completed],
                                 "tasklets resumed out of completion order")
                if strategy == "worker_acquires_gil":
                    # An IO thread counts an acquisition before it waits for
                    # the lock, the dispatcher once it holds it: one that
                    # found nothing left to drain may still be on its way.
                    self.run_loop(lambda n: gameloop.dispatch_stats()[strategy]["lock_acquisitions"] ==
                                  io_count("lock_acquisitions") - locks, max_frames=60)
                stats = gameloop.dispatch_stats()
                self.assertEqual(stats[strategy]["completions"], len(self.DELAYS), stats[strategy])
                self.assertEqual(sum(s["completions"] for s in stats.values()), len(self.DELAYS))
                taken = io_count("lock_acquisitions") - locks
                if strategy == "worker_acquires_gil":
                    self.assertGreaterEqual(taken, 1)
                    self.assertEqual(stats[strategy]["lock_acquisitions"], taken)
                else:
                    self.assertEqual(taken, 0, "an IO thread took the interpreter lock")

    def test_each_strategy_returns_io_completions_outside_the_loop(self):
        for strategy in STRATEGIES:
            with self.subTest(strategy=strategy):
                gameloop.set_dispatch_strategy(strategy)
                gameloop.reset_dispatch_stats()
                done = []
                tasklets = [self.spawn(lambda i=i: (_engine.io_timer(0.05 * (3 - i)), done.append(i)))
                            for i in range(3)]
                # The order the timers really completed in, from the queue: a
                # loaded machine can stall a start or an IO thread past the
                # 50 ms between the delays ([2, 0, 1] under main_loop).
                completed = []
                self.spawn(lambda: completed.extend(_engine.hold_for_completions(3)))
                stackless.run()
                self.assertEqual(self.errors, [])
                self.assertEqual(done, [tasklets.index(t) for t in completed])
                self.assertEqual(gameloop.dispatch_stats()[strategy]["completions"], 3)

    def frame_that_resumed_it(self, strategy):
        """An IO timer of 50 ms, started in a phase 4, ends during a later
        frame's 250 ms phase-1 wait: the stats of the frame it resumed in.
        Which phase dispatched it, not how fast: a loaded machine may end the
        timer late or wake the main thread late, never in another phase."""
        gameloop.set_fps(4)
        gameloop.set_dispatch_strategy(strategy)
        gameloop.reset_dispatch_stats()
        t = self.spawn(_engine.io_timer, 0.05)
        resumed_in = self.run_loop(lambda n: not t.alive)
        self.assertEqual(gameloop.dispatch_stats()[strategy]["completions"], 1)
        return self.stats[resumed_in]

    def test_phase_1_wakes_for_an_io_completion_under_main_thread_callback(self):
        s = self.frame_that_resumed_it("main_thread_callback")
        self.assertGreaterEqual(s["wait_runs"], 1, s)  # dispatched and run within the wait
        self.assertEqual(s["dispatched"], 0, s)

    def test_phase_1_sleeps_through_an_io_completion_under_main_loop(self):
        # Left for phase 2: the rest of the wait passes first.
        s = self.frame_that_resumed_it("main_loop")
        self.assertEqual((s["wait_runs"], s["dispatched"]), (0, 1), s)

    def test_an_idle_loop_sleeps_in_phase_1_while_io_is_in_flight(self):
        gameloop.set_fps(50)
        cpu_start = time.process_time()
        t = self.spawn(_engine.io_timer, 0.3)
        self.run_loop(lambda n: not t.alive)
        # 15 frames of 20 ms: asleep nearly all the time, not spinning.
        self.assertLess(time.process_time() - cpu_start, 0.15)


if __name__ == "__main__":
    unittest.main()
