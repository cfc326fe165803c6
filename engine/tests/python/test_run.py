"""stackless.run(): cooperative runs, nesting, the timed watchdog, deadlock.

Watchdog ticks are microseconds of a tasklet's wall-clock running time since
it was last switched in (1 tick = 1 us), not Python instructions.
"""

import sys
import threading
import time
import unittest

import stackless
from support import StacklessTestCase, busy_for, run_child
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)


class CooperativeRunTest(StacklessTestCase):

    def test_run_with_empty_queue_returns_none(self):
        self.assertIsNone(stackless.run())

    def test_run_returns_none_after_all_tasklets_finished(self):
        ts = [stackless.tasklet(lambda: None)() for _ in range(3)]
        self.assertIsNone(stackless.run())
        self.assertEqual([t.alive for t in ts], [False] * 3)

    def test_run_returns_when_remaining_tasklets_are_blocked(self):
        c = stackless.channel()
        t = stackless.tasklet(c.receive)()
        self.assertIsNone(stackless.run())
        self.assertTrue(t.blocked)
        self.assertEqual(stackless.getruncount(), 1)
        c.send(None)

    def test_main_is_paused_while_run_executes_tasklets(self):
        seen = []
        main = stackless.getmain()
        stackless.tasklet(lambda: seen.append((main.paused, main.scheduled)))()
        stackless.run()
        self.assertEqual(seen, [(True, False)])

    def test_main_is_scheduled_again_after_run(self):
        stackless.tasklet(lambda: None)()
        stackless.run()
        self.assertTrue(stackless.getmain().scheduled)
        self.assertEqual(stackless.getruncount(), 1)

    def test_tasklets_created_during_run_also_run(self):
        log = []

        def spawner():
            stackless.tasklet(log.append)("child")
            log.append("parent")

        stackless.tasklet(spawner)()
        stackless.run()
        self.assertEqual(log, ["parent", "child"])


class SignalDuringIdleWaitTest(StacklessTestCase):
    def test_a_signal_handlers_error_ends_a_later_idle_wait_of_run_with_that_error(self):
        # run() waits idle twice: for the short sleeper, then (the ring empty
        # again, a sleeper left) for the long one, where the signal lands. Its
        # error must come out of run(), with no result left over from the first
        # round (that was SystemError, and one reference to None lost per run).
        import signal
        import uthread

        class Tick(Exception):
            pass

        def on_alarm(*_):
            raise Tick

        previous = signal.signal(signal.SIGALRM, on_alarm)
        try:
            for _ in range(3):
                short = stackless.tasklet(uthread.Sleep)(0.001)
                long = stackless.tasklet(uthread.Sleep)(10)
                signal.setitimer(signal.ITIMER_REAL, 0.05)
                with self.assertRaises(Tick):
                    stackless.run()
                self.assertFalse(short.alive)
                long.kill()
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


class DeadlockTest(StacklessTestCase):

    def setUp(self):
        super().setUp()
        self.assertEqual(threading.active_count(), 1,
                         "precondition: no other Python thread may exist")

    def test_main_receive_with_nothing_runnable_raises_deadlock(self):
        c = stackless.channel()
        with self.assertRaisesRegex(RuntimeError, "(?i)deadlock"):
            c.receive()

    def test_main_send_with_nothing_runnable_raises_deadlock(self):
        c = stackless.channel()
        with self.assertRaisesRegex(RuntimeError, "(?i)deadlock"):
            c.send(1)

    def test_channel_balance_is_restored_after_deadlock(self):
        c = stackless.channel()
        with self.assertRaises(RuntimeError):
            c.receive()
        self.assertEqual(c.balance, 0)
        self.assertIsNone(c.queue)

    def test_main_is_runnable_again_after_deadlock(self):
        c = stackless.channel()
        with self.assertRaises(RuntimeError):
            c.receive()
        main = stackless.getmain()
        self.assertFalse(main.blocked)
        self.assertTrue(main.scheduled)

    def test_main_blocking_with_nothing_runnable_gets_stackless_deadlock_text(self):
        c = stackless.channel()
        with self.assertRaises(RuntimeError) as caught:
            c.receive()
        self.assertEqual(str(caught.exception), "Deadlock: the last runnable tasklet cannot be blocked.")

    def test_main_receiving_when_the_last_tasklet_ends_is_told_it_is_receiving(self):
        c = stackless.channel()
        stackless.tasklet(lambda: None)()
        with self.assertRaises(RuntimeError) as caught:
            c.receive()
        self.assertEqual(str(caught.exception), "the main tasklet is receiving without a sender available.")

    def test_main_sending_when_the_last_tasklet_ends_is_told_it_is_sending(self):
        c = stackless.channel()
        stackless.tasklet(lambda: None)()
        with self.assertRaises(RuntimeError) as caught:
            c.send(1)
        self.assertEqual(str(caught.exception), "the main tasklet is sending without a receiver available.")
        self.assertEqual(c.balance, 0)

    def test_tasklet_blocking_last_while_main_is_blocked_wakes_main_with_error(self):
        mc = stackless.channel()

        def task():
            stackless.channel().receive()

        stackless.tasklet(task)()
        with self.assertRaises(RuntimeError):
            mc.receive()


class MainRevivalTest(StacklessTestCase):
    """Main that switch()ed away is woken, as Stackless does, when nothing else can run."""

    def test_switch_to_a_tasklet_that_ends_returns_to_main(self):
        log = []
        self.assertIsNone(stackless.tasklet(lambda: log.append("ran"))().switch())
        self.assertEqual(log, ["ran"])
        self.assertTrue(stackless.getmain().scheduled)
        self.assertEqual(stackless.getruncount(), 1)

    def test_switch_to_a_tasklet_that_blocks_returns_to_main(self):
        c = stackless.channel()
        t = stackless.tasklet(c.receive)()
        t.switch()
        self.assertTrue(t.blocked)
        self.assertEqual(stackless.getruncount(), 1)
        c.send(None)
        self.assertFalse(t.alive)


class NestedRunTest(StacklessTestCase):

    def test_main_run_from_a_tasklet_wakes_the_outer_run(self):
        log = []

        def waker():
            log.append("waker")
            stackless.getmain().run()
            log.append("waker resumed")

        stackless.tasklet(waker)()
        stackless.tasklet(lambda: log.append("other"))()
        self.assertIsNone(stackless.run())
        log.append("run returned")
        self.assertEqual(log, ["waker", "run returned"])
        self.assertEqual(stackless.getruncount(), 3)
        stackless.run()
        self.assertEqual(log, ["waker", "run returned", "waker resumed", "other"])

    def test_inner_run_left_behind_by_a_woken_outer_run_returns_when_its_tasklet_runs(self):
        log = []

        def runner():
            stackless.tasklet(stackless.getmain().run)()
            stackless.run()
            log.append("inner run returned")

        stackless.tasklet(runner)()
        stackless.run()
        log.append("outer run returned")
        stackless.run()
        self.assertEqual(log, ["outer run returned", "inner run returned"])

    def test_inner_run_returns_when_the_queue_empties(self):
        log = []

        def worker():
            stackless.schedule()
            log.append("worker done")

        def runner():
            stackless.run()
            log.append("inner run returned")

        stackless.tasklet(worker)()
        stackless.tasklet(runner)()
        stackless.run()
        self.assertEqual(log, ["worker done", "inner run returned"])

    def test_outer_run_stays_paused_when_the_inner_run_returns(self):
        seen = []

        def runner():
            stackless.run()
            seen.append(stackless.getmain().paused)

        stackless.tasklet(lambda: None)()
        stackless.tasklet(runner)()
        stackless.run()
        self.assertEqual(seen, [True])

    def test_inner_run_receives_the_error_of_a_tasklet(self):
        log = []

        def failing():
            raise KeyError("inner")

        def runner():
            stackless.tasklet(failing)()
            try:
                stackless.run()
            except KeyError:
                log.append("inner caught")

        stackless.tasklet(runner)()
        stackless.run()
        self.assertEqual(log, ["inner caught"])

    def test_run_from_a_tasklet_while_main_is_blocked(self):
        c = stackless.channel()
        log = []

        def worker():
            stackless.schedule()
            log.append("worker")

        def runner():
            stackless.run()
            log.append("runner")
            c.send(None)

        stackless.tasklet(worker)()
        stackless.tasklet(runner)()
        c.receive()
        self.assertEqual(log, ["worker", "runner"])


def bounded_busy_loop(flag, log, limit_s=5.0):
    """Spin without switching until flag[0] is set (or limit_s passed)."""
    log.append(("started", time.monotonic()))
    end = time.monotonic() + limit_s
    while not flag[0] and time.monotonic() < end:
        pass
    log.append("finished")


class WatchdogTest(StacklessTestCase):

    def start_busy(self):
        flag, log = [False], []
        t = stackless.tasklet(bounded_busy_loop)(flag, log)
        return t, flag, log

    def test_timed_run_returns_the_busy_tasklet(self):
        t, flag, log = self.start_busy()
        self.assertIs(stackless.run(timeout=20000), t)
        self.assertNotIn("finished", log)

    def test_interrupted_tasklet_stays_alive_and_paused(self):
        t, flag, log = self.start_busy()
        stackless.run(timeout=20000)
        self.assertTrue(t.alive)
        self.assertTrue(t.paused)
        self.assertFalse(t.scheduled)
        self.assertEqual(stackless.getruncount(), 1)

    def test_interrupted_tasklet_frame_shows_the_busy_function(self):
        t, flag, log = self.start_busy()
        stackless.run(timeout=20000)
        self.assertIs(t.frame.f_code, bounded_busy_loop.__code__)

    def test_interrupt_comes_after_about_the_timeout(self):
        t, flag, log = self.start_busy()
        stackless.run(timeout=20000)
        ran_for = time.monotonic() - log[0][1]
        self.assertGreaterEqual(ran_for, 0.015)
        self.assertLess(ran_for, 1.0)

    def test_interrupted_tasklet_continues_where_it_was_after_insert(self):
        t, flag, log = self.start_busy()
        stackless.run(timeout=20000)
        flag[0] = True
        t.insert()
        self.assertIsNone(stackless.run())
        self.assertEqual(len(log), 2)
        self.assertEqual(log[1], "finished")

    def test_timeout_ticks_are_microseconds_not_instructions(self):
        # 100 ms of Python runs millions of instructions but only 100,000 us.
        done = []
        stackless.tasklet(lambda: done.append(busy_for(0.1)))()
        self.assertIsNone(stackless.run(timeout=1000000))
        self.assertEqual(len(done), 1)

    def test_timeout_budget_restarts_at_every_switch(self):
        # Each tasklet runs 4x the budget in all, in slices 20x below it. The
        # budget is wall-clock time, so a machine that stalls this process for
        # a whole budget inside one slice makes the watchdog right to
        # interrupt it: such a run is measured, and tried again.
        budget = 0.1
        for attempt in range(3):
            done = []
            slice_started = [time.perf_counter()]

            def polite(name):
                for _ in range(80):
                    slice_started[0] = time.perf_counter()
                    busy_for(0.005)
                    stackless.schedule()
                done.append(name)

            a = stackless.tasklet(polite)("a")
            b = stackless.tasklet(polite)("b")
            interrupted = stackless.run(timeout=int(budget * 1e6))
            if interrupted is None:
                break
            stalled = time.perf_counter() - slice_started[0] >= budget
            a.kill()
            b.kill()
            self.assertTrue(stalled, "a slice within the budget was interrupted")
        self.assertIsNone(interrupted, "every attempt stalled a whole budget")
        self.assertEqual(sorted(done), ["a", "b"])

    def test_atomic_tasklet_is_not_interrupted(self):
        done = []

        def atomic_busy():
            with stackless.atomic():
                busy_for(0.15)
            done.append("finished")

        t = stackless.tasklet(atomic_busy)()
        result = stackless.run(timeout=20000)
        self.assertEqual(done, ["finished"])
        self.assertIsNone(result)

    def test_other_tasklets_run_after_the_interrupted_one_is_reinserted(self):
        t, flag, log = self.start_busy()
        other = []
        stackless.tasklet(other.append)("other")
        interrupted = stackless.run(timeout=20000)
        self.assertIs(interrupted, t)
        flag[0] = True
        t.insert()
        stackless.run()
        self.assertEqual(other, ["other"])


class SoftWatchdogTest(StacklessTestCase):

    def make_overrunner(self):
        log = []

        def overrunner():
            busy_for(0.1)  # far over the 20 ms budget, never switching
            log.append("busy done")
            stackless.schedule()
            log.append("after schedule")

        return stackless.tasklet(overrunner)(), log

    def test_soft_run_does_not_interrupt_a_busy_tasklet(self):
        t, log = self.make_overrunner()
        stackless.run(timeout=20000, soft=True)
        self.assertEqual(log[:1], ["busy done"])

    def test_soft_run_returns_at_the_next_switch_after_the_budget(self):
        t, log = self.make_overrunner()
        stackless.run(timeout=20000, soft=True)
        self.assertEqual(log, ["busy done"])

    def test_soft_run_leaves_the_tasklet_scheduled(self):
        t, log = self.make_overrunner()
        stackless.run(timeout=20000, soft=True)
        self.assertTrue(t.alive)
        self.assertTrue(t.scheduled)
        self.assertFalse(t.paused)
        stackless.run()
        self.assertEqual(log, ["busy done", "after schedule"])

    def test_soft_run_returns_none(self):
        t, log = self.make_overrunner()
        self.assertIsNone(stackless.run(timeout=20000, soft=True))


class TotalTimeoutTest(StacklessTestCase):

    def start_cooperative_loopers(self, limit_s=3.0):
        def looper():
            end = time.monotonic() + limit_s
            while time.monotonic() < end:
                stackless.schedule()

        return [stackless.tasklet(looper)() for _ in range(2)]

    def test_totaltimeout_bounds_a_run_of_cooperative_tasklets(self):
        loopers = self.start_cooperative_loopers()
        start = time.monotonic()
        stackless.run(totaltimeout=100000)
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 1.0)
        self.assertTrue(all(t.alive for t in loopers))

    def test_totaltimeout_lets_the_run_last_about_that_long(self):
        self.start_cooperative_loopers()
        start = time.monotonic()
        stackless.run(totaltimeout=100000)
        self.assertGreaterEqual(time.monotonic() - start, 0.09)

    def test_totaltimeout_true_makes_timeout_the_total_as_in_stackless(self):
        loopers = self.start_cooperative_loopers()
        start = time.monotonic()
        stackless.run(100000, totaltimeout=True)
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.09)
        self.assertLess(elapsed, 1.0)
        self.assertTrue(all(t.alive for t in loopers))

    def test_soft_totaltimeout_leaves_all_tasklets_scheduled(self):
        loopers = self.start_cooperative_loopers()
        stackless.run(soft=True, totaltimeout=100000)
        self.assertTrue(all(t.scheduled for t in loopers))
        self.assertEqual(stackless.getruncount(), 3)


# A timed run() with untimed runs nested inside it, in tasklets: the outer one
# ends first (its totaltimeout passes) while the inner ones are still running.
# The budget (0.2 s, the spinners run 5 s) leaves the nested runs time to start
# before the outer one ends, even on a slow sanitized build under load (with
# 1 ms the innermost one had not started yet in one such run).
NESTED_RUNS_CHILD = """\
import stackless, sys, time
log = []
def runner(n):
    if n:
        stackless.tasklet(runner)(n - 1)
    stackless.run(200000, totaltimeout=True, ignore_nesting=True)
    log.append(n)
    t1.kill(); t2.kill()
def spin():
    end = time.monotonic() + 5
    while time.monotonic() < end:
        stackless.schedule()
t1 = stackless.tasklet(spin)(); t2 = stackless.tasklet(spin)()
stackless.tasklet(runner)(int(sys.argv[1]))
stackless.run()
print(log, stackless.getruncount(), flush=True)
"""


# The same, with the inner run()'s tasklet resumed by hand once the outer
# run() has returned: its run() found its own entry gone (a null read).
INNER_RUN_RESUMED_CHILD = """\
import stackless, time
def spin():
    end = time.monotonic() + 5
    while time.monotonic() < end:
        stackless.schedule()
def inner():
    stackless.run()
    print("inner run returned", flush=True)
def outer():
    inner_tasklet = stackless.tasklet(inner)()
    stackless.run(1000, totaltimeout=True)
    print("outer run returned", flush=True)
    for t in spinners:
        t.kill()
    inner_tasklet.insert()
spinners = [stackless.tasklet(spin)() for _ in range(2)]
stackless.tasklet(outer)()
stackless.run()
print("done", flush=True)
"""


class NestedTimedRunTest(StacklessTestCase):
    """Run in a child process: the old failure was a segfault at exit."""

    def run_nested(self, depth):
        return run_child([sys.executable, "-X", "faulthandler", "-c", NESTED_RUNS_CHILD, str(depth)])

    def test_process_exits_cleanly_after_an_outer_timed_run_ended_inner_runs(self):
        result = self.run_nested(3)
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_an_inner_run_resumed_after_the_outer_one_returned_returns_too(self):
        result = run_child([sys.executable, "-X", "faulthandler", "-c", INNER_RUN_RESUMED_CHILD])
        self.assertEqual((result.returncode, result.stdout),
                         (0, "outer run returned\ninner run returned\ndone\n"), result.stderr)

    def test_inner_runs_return_after_the_outer_timed_run_returns(self):
        # As in Stackless: the watchdogs above the one that returns are popped
        # and their tasklets made runnable, innermost first.
        result = self.run_nested(3)
        self.assertEqual(result.stdout, "[3, 0, 1, 2] 1\n", result.stderr)


# Each thread's watchdog timer holds a queued signal of the user's
# RLIMIT_SIGPENDING until it is deleted: threads that end must give theirs back.
TIMER_PER_THREAD_CHILD = """\
import _engine, resource, stackless, sys, threading, time
resource.setrlimit(resource.RLIMIT_SIGPENDING, (int(sys.argv[1]), resource.getrlimit(resource.RLIMIT_SIGPENDING)[1]))
errors = []
def user():
    try:
        stackless.tasklet(lambda: None)()
        stackless.run(timeout=100000)
    except BaseException as e:
        errors.append(repr(e))
for _ in range(int(sys.argv[2])):
    thread = threading.Thread(target=user)
    thread.start()
    thread.join()
end = time.monotonic() + 5  # the last thread may still be on its way out
while _engine.resource_counts()["timers"] and time.monotonic() < end:
    time.sleep(0.01)
print(len(errors), errors[:1], _engine.resource_counts()["timers"], flush=True)
"""

NO_TIMER_CHILD = """\
import resource, stackless
resource.setrlimit(resource.RLIMIT_SIGPENDING, (0, resource.getrlimit(resource.RLIMIT_SIGPENDING)[1]))
t = stackless.tasklet(lambda: None)()
try:
    stackless.run(timeout=100000)
except OSError as e:
    print("OSError:", e)
print(stackless.getruncount(), t.scheduled, flush=True)
stackless.run()  # untimed: needs no timer
print(t.alive, flush=True)
"""


class WatchdogTimerTest(StacklessTestCase):
    """Run in child processes: they lower RLIMIT_SIGPENDING."""

    deadline_s = 60.0

    def test_threads_that_used_run_timeout_give_their_timers_back(self):
        result = run_child([sys.executable, "-c", TIMER_PER_THREAD_CHILD, "500", "600"])
        # No errors, and no timer left once the threads are gone.
        self.assertEqual((result.returncode, result.stdout), (0, "0 [] 0\n"), result.stderr)

    def test_run_timeout_without_a_timer_raises_os_error_and_the_process_goes_on(self):
        result = run_child([sys.executable, "-c", NO_TIMER_CHILD])
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual(len(lines), 3, result.stdout + result.stderr)
        self.assertTrue(lines[0].startswith("OSError: [Errno 11] creating this thread's watchdog timer "
                                            "(timer_create)"), lines[0])
        self.assertIn("RLIMIT_SIGPENDING", lines[0])
        # Nothing changed: the tasklet is still queued, and an untimed run() runs it.
        self.assertEqual(lines[1:], ["2 True", "False"])


if __name__ == "__main__":
    unittest.main()
