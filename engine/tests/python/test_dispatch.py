"""Off-thread requests and the five dispatch strategies.

The contract is the header comment of engine/include/shard/engine/dispatcher.h:
every strategy wakes the tasklet that made the request, in completion order,
without switching; a switch of strategy loses or duplicates nothing; on_block
dispatches only completions older than the blocking request; pending_call
dispatches mid-frame while Python runs; a request given up on is cancelled.

Requests are _engine.call_in_thread (Python on a worker, results carry a
per-request id) and _engine.sleep_in_worker (C++ work, no Python). Most tests
run inside the game loop (LoopTestCase, from test_gameloop); tasklets record
what they saw and the test asserts after the loop stopped.
"""

import sys
import textwrap
import threading
import time
import unittest

import _engine
import gameloop
import stackless
import uthread
from support import StacklessTestCase, join_or_fail, result_in_new_thread, run_child, start_thread
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)
from test_gameloop import LoopTestCase

TaskletExit = stackless.TaskletExit
STRATEGIES = gameloop.STRATEGIES


class RequestError(LookupError):
    """Raised by a callable on a worker; must come back as itself."""


def answer(request_id, delay, finished=None):
    """Worker side: sleep, note the completion, return a result naming the request."""
    time.sleep(delay)
    if finished is not None:
        finished.append(request_id)
    return ("result", request_id)


def completions():
    return {name: stats["completions"] for name, stats in gameloop.dispatch_stats().items()}


class StrategyNamesTest(LoopTestCase):

    def test_set_dispatch_strategy_returns_the_previous_one(self):
        self.assertEqual(gameloop.set_dispatch_strategy("on_block"), "main_loop")
        self.assertEqual(gameloop.set_dispatch_strategy("pending_call"), "on_block")
        self.assertEqual(gameloop.dispatch_strategy(), "pending_call")

    def test_unknown_strategy_is_a_value_error_and_changes_nothing(self):
        with self.assertRaises(ValueError):
            gameloop.set_dispatch_strategy("carrier_pigeon")
        self.assertEqual(gameloop.dispatch_strategy(), "main_loop")

    def test_dispatch_stats_has_every_strategy(self):
        self.assertEqual(sorted(gameloop.dispatch_stats()), sorted(STRATEGIES))


# ---------------------------------------------------------------- outside the loop

class OutsideTheLoopTest(LoopTestCase):
    """Without the loop, stackless.run() waits for requests in flight."""

    def test_each_strategy_returns_the_result_to_the_calling_tasklet(self):
        for strategy in STRATEGIES:
            with self.subTest(strategy=strategy):
                gameloop.set_dispatch_strategy(strategy)
                gameloop.reset_dispatch_stats()
                got = {}

                def caller(i):
                    got[i] = _engine.call_in_thread(answer, i, 0.01 * (3 - i))

                tasklets = [self.spawn(caller, i) for i in range(3)]
                stackless.run()
                self.assertEqual(self.errors, [])
                self.assertEqual(got, {i: ("result", i) for i in range(3)})
                self.assertFalse(any(t.alive for t in tasklets))
                self.assertEqual(completions()[strategy], 3)

    def test_run_returns_only_after_the_tasklets_its_last_drain_woke_have_run(self):
        done = []

        def first():
            _engine.sleep_in_worker(0.01)
            _engine.hold_for_completions(1)  # the second request completes meanwhile, undispatched
            done.append("first")

        def second():
            _engine.sleep_in_worker(0.1)
            done.append("second")

        self.spawn(first)
        self.spawn(second)
        # When the ring empties after `first`, run() dispatches the second
        # completion as it checks for work in flight: it must run `second`
        # before returning.
        stackless.run()
        self.assertEqual(done, ["first", "second"])

    def test_running_a_waiting_tasklet_by_hand_does_not_end_its_wait(self):
        got = []
        t = self.spawn(lambda: got.append(_engine.call_in_thread(answer, 7, 0.1)))
        t.run()  # up to its wait
        t.run()  # resumed by hand: it waited on, it did not return None
        self.assertEqual(got, [])
        stackless.run()
        self.assertEqual(got, [("result", 7)])

    def test_a_killed_tasklets_request_is_cancelled_and_not_dispatched(self):
        seen = []
        release = threading.Event()

        def victim():
            try:
                _engine.call_in_thread(release.wait, 30)  # held until after the kill
                seen.append("woke")
            except TaskletExit:
                seen.append("TaskletExit")
                raise

        t = uthread.new(victim)
        t.run()  # up to its wait
        start = time.monotonic()
        t.kill()
        # The worker is held until after the kill: waiting for it would take
        # the full 30 s, a loaded machine stalls us for seconds at most.
        self.assertLess(time.monotonic() - start, 10, "kill waited for the worker")
        release.set()
        self.assertEqual(seen, ["TaskletExit"])
        self.assertFalse(t.alive)
        stackless.run()  # until the worker hands the cancelled request back
        self.assertEqual(completions()["main_loop"], 0)


# ---------------------------------------------------------------- completion order

class CompletionOrderTest(LoopTestCase):
    # Submitted in this order; they finish in the order of their delays.
    DELAYS = [0.20, 0.04, 0.16, 0.08, 0.12]

    def test_each_strategy_wakes_the_right_tasklets_in_completion_order(self):
        for strategy in STRATEGIES:
            with self.subTest(strategy=strategy):
                gameloop.set_dispatch_strategy(strategy)
                gameloop.reset_dispatch_stats()
                finished, resumed, results = [], [], {}

                def caller(i):
                    results[i] = _engine.call_in_thread(answer, i, self.DELAYS[i], finished)
                    resumed.append(i)

                tasklets = [self.spawn(caller, i) for i in range(len(self.DELAYS))]
                self.run_loop(lambda n: not any(t.alive for t in tasklets))
                self.assertEqual(results, {i: ("result", i) for i in range(len(self.DELAYS))})
                # The scenario (finishing in delay order, not submission order)
                # is only for variety: the contract is completion order.
                self.assertNotEqual(finished, sorted(finished), "the requests completed in submission order")
                self.assertEqual(resumed, finished, "tasklets resumed out of completion order")
                counts = completions()
                self.assertEqual(counts[strategy], len(self.DELAYS))
                self.assertEqual(sum(counts.values()), len(self.DELAYS), counts)

    def test_each_strategy_brings_back_the_callables_exception(self):
        def fail(request_id):
            raise RequestError("request %d failed" % request_id)

        for strategy in STRATEGIES:
            with self.subTest(strategy=strategy):
                gameloop.set_dispatch_strategy(strategy)
                caught = {}

                def caller(i):
                    try:
                        _engine.call_in_thread(fail, i)
                    except RequestError as e:
                        caught[i] = e.args

                tasklets = [self.spawn(caller, i) for i in range(3)]
                self.run_loop(lambda n: not any(t.alive for t in tasklets))
                self.assertEqual(caught, {i: ("request %d failed" % i,) for i in range(3)})


class OneDrainOrderTest(LoopTestCase):
    """Several completions taken by one drain wake their tasklets in completion order."""

    # Submitted in this order; they usually complete in the order of their
    # delays. The test takes the real order from the queue: a loaded machine
    # can stall a submission or a worker for longer than the gaps.
    DELAYS = [0.3, 0.1, 0.4, 0.2, 0.5]

    def test_every_strategy_resumes_one_drains_completions_in_completion_order(self):
        for strategy in STRATEGIES:
            with self.subTest(strategy=strategy):
                gameloop.set_dispatch_strategy(strategy)
                gameloop.reset_dispatch_stats()
                resumed = []

                def caller(i):
                    _engine.sleep_in_worker(self.DELAYS[i])
                    resumed.append(i)

                tasklets = [self.spawn(caller, i) for i in range(len(self.DELAYS))]
                stackless.schedule()  # each runs up to its request
                self.assertEqual(resumed, [])
                # Every request completes while the main thread dispatches
                # nothing (no bytecode, no wait, the interpreter lock kept).
                completed = _engine.hold_for_completions(len(self.DELAYS))
                stackless.run()
                self.assertEqual(self.errors, [])
                self.assertFalse(any(t.alive for t in tasklets))
                stats = gameloop.dispatch_stats()[strategy]
                self.assertEqual((stats["drains"], stats["completions"]), (1, len(self.DELAYS)),
                                 "the scenario needs all completions in one drain")
                self.assertEqual(resumed, [tasklets.index(t) for t in completed],
                                 "one drain resumed its tasklets out of completion order")


class OtherThreadTest(LoopTestCase):
    """The dispatcher belongs to the main thread; tasklets of other threads make requests too."""

    def test_a_request_from_another_thread_first_leaves_the_main_threads_requests_working(self):
        self.assertEqual(result_in_new_thread(lambda: _engine.call_in_thread(lambda: 1, timeout=5.0)), 1)
        # A stranded request would end in TimeoutError instead.
        self.assertEqual(_engine.call_in_thread(lambda: 2, timeout=5.0), 2)

    def test_another_threads_tasklets_get_their_results_while_the_main_thread_is_blocked(self):
        self.assertEqual(_engine.call_in_thread(lambda: 0), 0)  # the main thread's requests first
        got = {}

        def in_thread():
            def caller(i):
                got[i] = _engine.call_in_thread(lambda: i * 10, timeout=5.0)
            for i in range(3):
                stackless.tasklet(caller)(i)
            stackless.run()

        # The main thread only joins: it never dispatches anything meanwhile.
        join_or_fail(start_thread(in_thread), timeout=5.0)
        self.assertEqual(got, {0: 0, 1: 10, 2: 20})

    def test_another_threads_request_times_out_and_raises_the_callables_error(self):
        release = threading.Event()
        self.addCleanup(release.set)

        def in_thread():
            start = time.monotonic()
            try:
                _engine.call_in_thread(release.wait, 30, timeout=0.1)  # held past the timeout
            except TimeoutError:
                timed_out_after = time.monotonic() - start
            release.set()
            try:
                _engine.call_in_thread(int, "not a number")
            except ValueError as e:
                return timed_out_after, str(e)

        timed_out_after, error = result_in_new_thread(in_thread)
        # Waiting for the worker would take the full 30 s.
        self.assertLess(timed_out_after, 10, "the timeout waited for the worker")
        self.assertIn("invalid literal for int()", error)


class WorkerResourcesTest(LoopTestCase):

    @staticmethod
    def resident_bytes():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096

    @unittest.skipIf(_engine.SANITIZED, "ASan's quarantine keeps freed memory resident: RSS says nothing there")
    def test_requests_that_touch_stackless_on_a_worker_leave_memory_flat(self):
        def touch():
            return stackless.getcurrent().thread_id

        for _ in range(2000):  # every worker has run one
            _engine.call_in_thread(touch)
        before = self.resident_bytes()
        for _ in range(20000):
            _engine.call_in_thread(touch)
        grew = self.resident_bytes() - before
        # A thread state and a scheduler per request grew it by ~8 MiB.
        self.assertLess(grew, 2 << 20, "20,000 requests grew resident memory by %d KiB" % (grew >> 10))
        # One thread state, and at most one scheduler, per worker.
        counts = _engine.resource_counts()
        self.assertLessEqual(counts["worker_thread_states"], _engine.worker_count())
        self.assertLessEqual(counts["worker_schedulers"], counts["worker_thread_states"])


class WorkerStartFailureTest(StacklessTestCase):
    """A worker thread the OS refuses (here: no address space for its stack)."""

    CHILD = textwrap.dedent("""
        import resource, stackless, _engine
        def vm_bytes():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[0]) * 4096
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if WARM:
            for i in range(8):  # the pool's first workers, and the tasklets' stacks
                stackless.tasklet(_engine.sleep_in_worker)(0)
            stackless.run()
        workers = _engine.worker_count()
        resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + (4 << 20), hard))  # no room for a thread stack
        try:
            if WARM:
                done = []
                for i in range(8):  # more than the running workers: the pool wants to grow
                    stackless.tasklet(lambda: done.append(_engine.sleep_in_worker(0.05)))()
                stackless.run()
                print("done", len(done), _engine.worker_count() == workers)
            else:
                _engine.call_in_thread(lambda: 1)
        except OSError as e:
            print("OSError", e.errno, e)
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        print("after", _engine.call_in_thread(lambda: 5))
    """)

    def run_child_with(self, warm):
        return run_child([sys.executable, "-c", "WARM = %r\n" % warm + self.CHILD])

    def test_no_worker_at_all_fails_the_request_with_os_error(self):
        result = self.run_child_with(False)
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(len(lines), 2, result.stdout)
        self.assertRegex(lines[0], r"^OSError \d+ .*cannot start a worker thread")
        self.assertEqual(lines[1], "after 5")

    def test_requests_a_new_worker_cannot_take_wait_for_the_running_ones(self):
        result = self.run_child_with(True)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), ["done 8 True", "after 5"])


class TimeoutTest(LoopTestCase):

    def test_call_in_thread_past_its_timeout_raises_timeout_error(self):
        outcome = []

        release = threading.Event()
        self.addCleanup(release.set)

        def caller():
            start = time.monotonic()
            try:
                _engine.call_in_thread(release.wait, 30, timeout=0.05)  # held past the timeout
                outcome.append("returned")
            except TimeoutError:
                outcome.append(time.monotonic() - start)

        t = self.spawn(caller)
        self.run_loop(lambda n: not t.alive)
        release.set()
        self.assertEqual(len(outcome), 1)
        self.assertNotEqual(outcome[0], "returned")
        self.assertGreaterEqual(outcome[0], 0.05 - 0.002)
        # Waiting for the worker would take the full 30 s.
        self.assertLess(outcome[0], 10, "the tasklet waited for the worker")

    def test_sleep_in_worker_past_its_timeout_raises_timeout_error(self):
        outcome = []

        def caller():
            try:
                _engine.sleep_in_worker(0.5, timeout=0.05)
                outcome.append("returned")
            except TimeoutError:
                outcome.append("TimeoutError")

        t = self.spawn(caller)
        self.run_loop(lambda n: not t.alive)
        self.assertEqual(outcome, ["TimeoutError"])

    def test_a_request_within_its_timeout_returns_its_result(self):
        got = []
        t = self.spawn(lambda: got.append(_engine.call_in_thread(answer, 7, 0.01, timeout=5)))
        self.run_loop(lambda n: not t.alive)
        self.assertEqual(got, [("result", 7)])


@unittest.skipIf(_engine.SANITIZED, "ASan cannot follow the forced unwind (pthread_exit) these provoke: its CHECK in"
                 " __asan_handle_no_return fails; the normal build runs them")
class WorkerAtInterpreterExitTest(StacklessTestCase):
    """A worker that takes the interpreter lock while the interpreter finalizes.

    CPython 3.11 ends such a thread with pthread_exit; its forced unwind
    reached the worker's noexcept frames and std::terminate aborted the node
    ("terminate called without an active exception", a proxy stopping with
    timed-out scrypt logins still on its workers). The child's request times
    out, the worker's work outlives the script, and a finalizer collected
    during finalization keeps the interpreter finalizing until the work ends.
    """

    CHILD = textwrap.dedent("""
        import os, sys, time, gameloop, _engine
        class SlowTeardown:
            def __del__(self, sleep=time.sleep, write=os.write):
                write(1, b"finalizing\\n")
                sleep(0.4)  # the worker's work ends meanwhile and wants the lock
        cycle = SlowTeardown()
        cycle.me = cycle  # collected by the finalization's last collection
        sys.modules["slow_teardown"] = cycle
        del cycle
        gameloop.set_dispatch_strategy(STRATEGY)
        try:
            if PYTHON:
                _engine.call_in_thread(time.sleep, 0.1, timeout=0.01)
            else:
                _engine.sleep_in_worker(0.1, timeout=0.01)
        except TimeoutError:
            print("timed out", flush=True)
    """)

    def run_child_with(self, python, strategy):
        child = "PYTHON = %r\nSTRATEGY = %r\n" % (python, strategy) + self.CHILD
        return run_child([sys.executable, "-X", "faulthandler", "-c", child])

    def assert_exits_cleanly(self, result):
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), ["timed out", "finalizing"])
        self.assertNotIn("terminate", result.stderr)

    def test_a_python_callable_that_outlives_the_interpreter_does_not_abort_the_process(self):
        self.assert_exits_cleanly(self.run_child_with(True, "main_loop"))

    def test_a_worker_taking_the_lock_to_dispatch_at_exit_does_not_abort_the_process(self):
        self.assert_exits_cleanly(self.run_child_with(False, "worker_acquires_gil"))


# ---------------------------------------------------------------- switching strategies

class StrategySwitchTest(LoopTestCase):
    deadline_s = 40.0

    def test_switching_strategy_under_load_loses_and_duplicates_nothing(self):
        gameloop.set_fps(100)
        tasklets_n, requests_n = 40, 25
        got = {i: [] for i in range(tasklets_n)}
        used = set()

        def client(i):
            for k in range(requests_n):
                request_id = (i, k)
                delay = ((i * 7 + k * 3) % 5) * 0.002
                result = _engine.call_in_thread(answer, request_id, delay)
                got[i].append(result)
                if k % 3 == 0:
                    uthread.BeNice()

        def on_tick(n):
            if n % 3 == 0:
                strategy = STRATEGIES[(n // 3) % len(STRATEGIES)]
                gameloop.set_dispatch_strategy(strategy)
            used.add(gameloop.dispatch_strategy())

        clients = [self.spawn(client, i) for i in range(tasklets_n)]
        self.run_loop(lambda n: not any(t.alive for t in clients), on_tick, max_frames=3000)
        self.assertEqual(used, set(STRATEGIES), "the load did not last through all five strategies")
        for i in range(tasklets_n):
            self.assertEqual(got[i], [("result", (i, k)) for k in range(requests_n)], "tasklet %d" % i)
        counts = completions()
        self.assertEqual(sum(counts.values()), tasklets_n * requests_n, counts)
        self.assertTrue(all(counts[s] > 0 for s in STRATEGIES), counts)


# ---------------------------------------------------------------- on_block

class OnBlockTest(LoopTestCase):

    def older_completion_scenario(self, strategy):
        """Frame 1: A is submitted, a busy tasklet lets it complete, then B blocks.

        Returns (frame A's tasklet resumed in, the strategy's completions seen
        in frame 1's phase 5).
        """
        gameloop.set_fps(10)          # 100 ms frames
        gameloop.set_run_budget(0.9)  # one phase 4 holds all of it
        gameloop.set_dispatch_strategy(strategy)
        resumed = {}
        in_frame_1 = []

        def older():
            _engine.sleep_in_worker(0.002)
            resumed["A"] = self.current_frame()

        def busy():
            _engine.hold_for_completions(1)  # A completes meanwhile; nothing dispatches it

        def newer():
            _engine.sleep_in_worker(0.3)
            resumed["B"] = self.current_frame()

        def on_tick(n):
            if n == 1:
                in_frame_1.append(completions()[strategy])

        tasklets = [self.spawn(older), self.spawn(busy), self.spawn(newer)]
        self.run_loop(lambda n: not any(t.alive for t in tasklets), on_tick)
        return resumed["A"], in_frame_1[0]

    def test_a_blocking_tasklet_dispatches_older_completions_at_once(self):
        self.assertEqual(self.older_completion_scenario("on_block"), (1, 1))

    def test_main_loop_leaves_the_same_completion_for_phase_2(self):
        self.assertEqual(self.older_completion_scenario("main_loop"), (2, 0))

    def test_a_tasklet_never_dispatches_its_own_request_when_it_blocks(self):
        # Whether or not the worker finished before the tasklet parked, only a
        # later blocker or phase 2 may dispatch the request: with no one else
        # blocking, it resumes in the next frame, every time.
        gameloop.set_fps(100)
        gameloop.set_dispatch_strategy("on_block")
        rounds = []

        def caller():
            for _ in range(30):
                asked = self.current_frame()
                _engine.sleep_in_worker(0.0)
                rounds.append(self.current_frame() - asked)

        t = self.spawn(caller)
        self.run_loop(lambda n: not t.alive)
        # 0 would be its own block dispatching it; more than 1 is a late worker.
        self.assertEqual(len(rounds), 30)
        self.assertNotIn(0, rounds, rounds)

    def test_a_blocker_dispatches_what_completed_before_it_and_nothing_else(self):
        # A is submitted first but is slow; B second and fast. When C blocks,
        # B has completed and A has not: C dispatches B (mid-frame), A waits
        # for its own completion (phase 2 of a later frame), C for its own.
        gameloop.set_fps(10)
        gameloop.set_run_budget(0.9)
        gameloop.set_dispatch_strategy("on_block")
        order = []

        def slow_a():
            _engine.sleep_in_worker(0.15)
            order.append(("A", self.current_frame()))

        def fast_b():
            _engine.sleep_in_worker(0.002)
            order.append(("B", self.current_frame()))

        def busy_then_block_c():
            # B completes, A (150 ms) not yet; if a loaded machine lets A
            # complete too, both are older than C: C dispatches B, then A.
            _engine.hold_for_completions(1)
            _engine.sleep_in_worker(0.3)
            order.append(("C", self.current_frame()))

        tasklets = [self.spawn(slow_a), self.spawn(fast_b), self.spawn(busy_then_block_c)]
        self.run_loop(lambda n: not any(t.alive for t in tasklets))
        self.assertEqual(order[0], ("B", 1), "C's block did not dispatch B, which is older")
        self.assertEqual([name for name, _ in order], ["B", "A", "C"])
        self.assertEqual(completions()["on_block"], 3)


# ---------------------------------------------------------------- mid-frame dispatch

class MidFrameDispatchTest(LoopTestCase):
    BUSY_S = 0.05
    GIVE_UP_S = 10  # only a hang keeps a 2 ms request from completing that long

    def busy_while_waiting(self, strategy):
        """A tasklet waits on a 2 ms request while another runs Python until
        the waiter is woken, or until the completion has waited BUSY_S
        undispatched (a loaded machine may complete the request late: the busy
        run waits for it rather than for a fixed time).

        Returns (woken during the busy run, frame the waiter resumed in,
        dispatch latency stats).
        """
        gameloop.set_fps(2)           # 500 ms frames: room for a late worker within phase 4
        gameloop.set_run_budget(0.9)
        gameloop.set_long_run_limit(1000)  # the busy run is meant to be long
        gameloop.set_dispatch_strategy(strategy)
        gameloop.reset_dispatch_stats()
        seen = {}

        def waiter():
            _engine.sleep_in_worker(0.002)
            seen["resumed"] = self.current_frame()

        def busy():
            give_up = time.perf_counter() + self.GIVE_UP_S
            queued_at = None
            while not waiting.scheduled and time.perf_counter() < give_up:
                if queued_at is None:
                    if _engine.hold_for_completions(0):  # completed, not dispatched
                        queued_at = time.perf_counter()
                elif time.perf_counter() - queued_at > self.BUSY_S:
                    break
            seen["woken while busy"] = waiting.scheduled
            seen["completed while busy"] = queued_at is not None or waiting.scheduled

        waiting = self.spawn(waiter)
        spinner = self.spawn(busy)
        self.run_loop(lambda n: not waiting.alive and not spinner.alive)
        self.assertTrue(seen["completed while busy"], "the request did not complete within %d s" % self.GIVE_UP_S)
        latency = gameloop.dispatch_stats()[strategy]["dispatch_latency"]
        return seen["woken while busy"], seen["resumed"], latency

    def test_pending_call_dispatches_while_python_runs_in_phase_4(self):
        woken, frame, latency = self.busy_while_waiting("pending_call")
        self.assertTrue(woken, "not made runnable while the busy tasklet ran")
        self.assertEqual(frame, 1, "did not run in the frame it was woken in")
        self.assertEqual(latency["count"], 1)

    def test_main_loop_waits_for_phase_2(self):
        woken, frame, latency = self.busy_while_waiting("main_loop")
        self.assertFalse(woken)
        self.assertEqual(frame, 2)
        self.assertEqual(latency["count"], 1)
        # It waited out the busy run's BUSY_S after it completed, at least.
        self.assertGreater(latency["p50_us"], self.BUSY_S * 1e6 * 0.8, latency)

    def test_main_thread_callback_dispatches_during_the_wait_not_in_phase_4(self):
        woken, frame, latency = self.busy_while_waiting("main_thread_callback")
        self.assertFalse(woken)
        self.assertEqual(frame, 2)


# ---------------------------------------------------------------- worker_acquires_gil

class WorkerAcquiresGilTest(LoopTestCase):

    def test_one_lock_acquisition_may_dispatch_several_completions(self):
        gameloop.set_dispatch_strategy("worker_acquires_gil")
        done = []

        def caller(i):
            _engine.sleep_in_worker(0.01)
            done.append(i)

        tasklets = [self.spawn(caller, i) for i in range(40)]
        self.run_loop(lambda n: not any(t.alive for t in tasklets))
        self.assertEqual(sorted(done), list(range(40)))
        stats = gameloop.dispatch_stats()["worker_acquires_gil"]
        self.assertEqual(stats["completions"], 40)
        self.assertGreaterEqual(stats["lock_acquisitions"], 1)
        self.assertLessEqual(stats["lock_acquisitions"], stats["completions"])
        self.assertLessEqual(stats["drains"], stats["lock_acquisitions"] + 2)


# ---------------------------------------------------------------- cancellation

class CancelTest(LoopTestCase):

    def test_a_killed_tasklet_dies_at_once_and_its_late_completion_is_not_dispatched(self):
        for strategy in STRATEGIES:
            with self.subTest(strategy=strategy):
                gameloop.set_fps(50)
                gameloop.set_dispatch_strategy(strategy)
                gameloop.reset_dispatch_stats()
                seen = []

                release = threading.Event()

                def victim():
                    try:
                        _engine.call_in_thread(release.wait, 30)  # held until after the kill
                        seen.append("woke")
                    except TaskletExit:
                        seen.append("TaskletExit")
                        raise

                def control():
                    _engine.sleep_in_worker(0.01)

                def killer():
                    uthread.BeNice()  # the victim waits by now
                    start = time.monotonic()
                    victim_tasklet.kill()
                    seen.append(("killed in", time.monotonic() - start, victim_tasklet.alive))
                    release.set()

                victim_tasklet = self.spawn(victim)
                control_tasklet = self.spawn(control)
                self.spawn(killer)
                # Until the control is done and the worker handed the
                # cancelled request back: then a dispatch of it would show.
                self.run_loop(lambda n: release.is_set() and not control_tasklet.alive and
                              _engine.resource_counts()["requests_in_flight"] == 0)
                self.assertEqual(seen[0], "TaskletExit")
                self.assertEqual(seen[1][0], "killed in")
                # Waiting for the worker would take the full 30 s.
                self.assertLess(seen[1][1], 10, "kill waited for the worker")
                self.assertFalse(seen[1][2])
                self.assertEqual(len(seen), 2)
                self.assertEqual(completions()[strategy], 1, "only the control request counts")


# ---------------------------------------------------------------- concurrency

class ConcurrencyTest(LoopTestCase):

    def test_many_blocking_calls_run_concurrently(self):
        # Each call blocks its worker until all n are blocked at once: only
        # concurrent calls get past the barrier (serialised ones would break
        # it at its timeout), whatever the machine's load; no elapsed-time bound.
        n = 100
        barrier = threading.Barrier(n, timeout=10)
        finished = []

        def caller():
            _engine.call_in_thread(barrier.wait)
            finished.append(1)

        tasklets = [self.spawn(caller) for _ in range(n)]
        self.run_loop(lambda frame: not any(t.alive for t in tasklets))
        self.assertEqual(len(finished), n)
        self.assertFalse(barrier.broken)


if __name__ == "__main__":
    unittest.main()
