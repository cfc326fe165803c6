"""uthread: Sleep, Yield, channel, and the locks shared between tasklets and threads.

The module promises (uthread.py, sync_types.cpp, waiters.h): a wait blocks only
the calling tasklet; waiters are woken in FIFO order; waking never switches
(the woken tasklet runs in its round-robin turn); a release or notify is never
lost to a waiter that timed out or was killed; and the locks work between
tasklets of different threads.

Timing checks are one-sided ("not before the timeout"); only the busy-wait
check compares CPU time with wall time.
"""

import gc
import sys
import textwrap
import threading
import time
import unittest

import stackless
import uthread
from support import (StacklessTestCase, result_in_new_thread, run_child, start_thread, SuspectedDeadlock, busy_for,
                     join_or_fail, wait_until)
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)

TaskletExit = stackless.TaskletExit

# How much earlier than asked a timed wait may end: the engine rounds to
# nanoseconds and reads the same monotonic clock, so this is only float noise.
EARLY_SLACK_S = 0.002


class TaskletThread:
    """An OS thread that runs `funcs`, each in its own tasklet, until all end.

    The thread's scheduler is polled (run(), then a short OS sleep) because its
    tasklets may wait for a wake-up from the main thread, and run() without
    threadblock returns when nothing of its own is runnable.
    """

    def __init__(self, *funcs, timeout=8.0):
        self.errors = []
        self.timeout = timeout
        self.thread = start_thread(self._main, funcs)

    def _main(self, funcs):
        try:
            tasklets = [uthread.new(f) for f in funcs]
            end = time.monotonic() + self.timeout
            while any(t.alive for t in tasklets):
                if time.monotonic() > end:
                    raise SuspectedDeadlock("suspected deadlock: tasklets of a thread did not end")
                stackless.run()
                time.sleep(0.0005)
        except BaseException as e:  # reported to the test by join()
            self.errors.append(e)

    def join(self):
        join_or_fail(self.thread, self.timeout + 2)
        if self.errors:
            raise self.errors[0]


def run_main_tasklets(tasklets, timeout=8.0):
    """Run this thread's scheduler until `tasklets` have ended (they may wait on other threads)."""
    end = time.monotonic() + timeout
    while any(t.alive for t in tasklets):
        if time.monotonic() > end:
            raise SuspectedDeadlock("suspected deadlock: main-thread tasklets did not end")
        stackless.run()
        time.sleep(0.0005)


def started(func, *args):
    """A tasklet running func, already run up to its first wait."""
    t = uthread.new(func, *args)
    t.run()
    return t


in_new_thread = result_in_new_thread


def sleep_under_run(seconds):
    """Start a tasklet sleeping `seconds`, call run(); return what it logged by then."""
    log = []

    def sleeper():
        uthread.Sleep(seconds)
        log.append("woke")

    uthread.new(sleeper)
    stackless.run()
    return log


# ---------------------------------------------------------------- new

class NewTest(StacklessTestCase):

    def test_new_returns_a_runnable_tasklet_that_has_not_run_yet(self):
        log = []
        t = uthread.new(log.append, "ran")
        self.assertIsInstance(t, stackless.tasklet)
        self.assertTrue(t.alive)
        self.assertTrue(t.scheduled)
        self.assertEqual(log, [])
        self.assertEqual(stackless.getruncount(), 2)
        stackless.run()
        self.assertEqual(log, ["ran"])

    def test_new_passes_positional_and_keyword_arguments(self):
        got = []
        uthread.new(lambda *a, **k: got.append((a, k)), 1, 2, key="value")
        stackless.run()
        self.assertEqual(got, [((1, 2), {"key": "value"})])


# ---------------------------------------------------------------- Sleep

class SleepTest(StacklessTestCase):

    def test_sleep_does_not_wake_before_its_time(self):
        start = time.monotonic()
        uthread.Sleep(0.05)
        self.assertGreaterEqual(time.monotonic() - start, 0.05 - EARLY_SLACK_S)

    def test_sleeping_tasklet_does_not_wake_before_its_time(self):
        woke = []

        def sleeper():
            start = time.monotonic()
            uthread.Sleep(0.05)
            woke.append(time.monotonic() - start)

        uthread.new(sleeper)
        stackless.run()
        self.assertEqual(len(woke), 1)
        self.assertGreaterEqual(woke[0], 0.05 - EARLY_SLACK_S)

    def test_other_tasklets_run_while_one_sleeps(self):
        log = []

        def sleeper():
            uthread.Sleep(0.1)
            log.append("sleeper woke")

        def worker():
            for i in range(3):
                log.append("worker %d" % i)
                uthread.Yield()

        uthread.new(sleeper)
        uthread.new(worker)
        stackless.run()
        self.assertEqual(log, ["worker 0", "worker 1", "worker 2", "sleeper woke"])

    def test_sleep_with_nothing_else_runnable_does_not_busy_wait(self):
        wall_start, cpu_start = time.monotonic(), time.process_time()
        uthread.Sleep(0.2)
        wall = time.monotonic() - wall_start
        cpu = time.process_time() - cpu_start
        self.assertGreaterEqual(wall, 0.2 - EARLY_SLACK_S)
        self.assertLess(cpu, wall / 4, "Sleep(0.2) used %.3f s of CPU in %.3f s" % (cpu, wall))

    def test_sleeping_tasklet_under_run_does_not_busy_wait(self):
        uthread.new(uthread.Sleep, 0.2)
        wall_start, cpu_start = time.monotonic(), time.process_time()
        stackless.run()
        wall = time.monotonic() - wall_start
        cpu = time.process_time() - cpu_start
        self.assertLess(cpu, wall / 4, "run() over a 0.2 s sleeper used %.3f s of CPU" % cpu)

    def test_sleepers_wake_in_deadline_order(self):
        log = []

        def sleeper(name, seconds):
            uthread.Sleep(seconds)
            log.append(name)

        uthread.new(sleeper, "long", 0.15)
        uthread.new(sleeper, "short", 0.03)
        uthread.new(sleeper, "middle", 0.09)
        stackless.run()
        self.assertEqual(log, ["short", "middle", "long"])

    def test_sleepers_with_equal_durations_wake_in_the_order_they_slept(self):
        log = []

        def sleeper(name):
            uthread.Sleep(0.05)
            log.append(name)

        for name in "abcde":
            uthread.new(sleeper, name)
        stackless.run()
        self.assertEqual(log, list("abcde"))

    def test_sleepers_due_together_wake_in_deadline_order(self):
        # All deadlines pass while main busy-waits, so one pass of the timer
        # heap wakes them together: the ring order must still follow deadlines.
        log = []

        def sleeper(name, seconds):
            uthread.Sleep(seconds)
            log.append(name)

        for name, seconds in (("c", 0.03), ("a", 0.01), ("b", 0.02)):
            started(sleeper, name, seconds)
        busy_for(0.06)
        stackless.run()
        self.assertEqual(log, ["a", "b", "c"])

    def test_sleep_zero_lets_other_runnable_tasklets_run(self):
        log = []
        uthread.new(log.append, "other")
        uthread.Sleep(0)
        self.assertEqual(log, ["other"])

    def test_sleep_zero_puts_the_caller_behind_the_runnable_tasklets(self):
        log = []

        def sleeper(name):
            log.append(name + " before")
            uthread.Sleep(0)
            log.append(name + " after")

        uthread.new(sleeper, "a")
        uthread.new(sleeper, "b")
        stackless.run()
        self.assertEqual(log, ["a before", "b before", "a after", "b after"])

    def test_run_returns_only_after_sleepers_are_done(self):
        log = []

        def sleeper():
            uthread.Sleep(0.1)
            log.append("done")

        t = uthread.new(sleeper)
        start = time.monotonic()
        stackless.run()
        self.assertEqual(log, ["done"])
        self.assertFalse(t.alive)
        self.assertGreaterEqual(time.monotonic() - start, 0.1 - EARLY_SLACK_S)

    def test_killed_sleeper_dies_with_tasklet_exit_and_runs_its_finally(self):
        log = []

        def sleeper():
            try:
                uthread.Sleep(5)
                log.append("woke")
            except TaskletExit:
                log.append("TaskletExit")
                raise
            finally:
                log.append("finally")

        t = started(sleeper)
        t.kill()
        self.assertEqual(log, ["TaskletExit", "finally"])
        self.assertFalse(t.alive)

    def test_sleeper_killed_early_does_not_keep_run_waiting_for_its_deadline(self):
        t = started(uthread.Sleep, 5)
        t.kill()
        start = time.monotonic()
        stackless.run()
        self.assertLess(time.monotonic() - start, 1.0, "run() waited for a killed sleeper's deadline")

    # The next two run in a new thread: a fresh scheduler, so the timer
    # bookkeeping does not depend on what earlier tests left in this one.

    def test_run_waits_for_a_sleeper_after_a_pending_kill_outlived_its_timer(self):
        # A sleeper killed with pending=True whose deadline passes before it
        # gets to run: its timer entry is popped when the deadline is seen,
        # then its wait ends by the kill. Neither may make the scheduler count
        # a later sleeper's timer as stale.
        def scenario():
            victim = started(uthread.Sleep, 0.01)
            victim.kill(pending=True)
            busy_for(0.03)
            uthread.Yield()  # the deadline is seen, then the victim dies
            assert not victim.alive
            return sleep_under_run(0.1)

        self.assertEqual(in_new_thread(scenario), ["woke"],
                         "run() returned while a tasklet was still sleeping")

    def test_run_waits_for_a_sleeper_after_a_woken_waiter_outlived_its_timeout(self):
        # The same with a timed Semaphore wait: the waiter is handed a unit,
        # but its timeout passes before it gets to run.
        def scenario():
            sem = uthread.Semaphore(0)
            got = []
            started(lambda: got.append(sem.acquire(timeout=0.01)))
            sem.release()
            busy_for(0.03)
            uthread.Yield()
            assert got == [True], got
            return sleep_under_run(0.1)

        self.assertEqual(in_new_thread(scenario), ["woke"],
                         "run() returned while a tasklet was still sleeping")

    def test_sleep_of_nan_raises_value_error(self):
        with self.assertRaises(ValueError):
            uthread.Sleep(float("nan"))


# ---------------------------------------------------------------- Yield / BeNice

class YieldTest(StacklessTestCase):

    def round_robin(self, yield_function):
        log = []

        def worker(name):
            for i in range(3):
                log.append("%s%d" % (name, i))
                yield_function()

        for name in "abc":
            uthread.new(worker, name)
        stackless.run()
        return log

    def test_yield_runs_tasklets_round_robin(self):
        self.assertEqual(self.round_robin(uthread.Yield),
                         ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"])

    def test_benice_runs_tasklets_round_robin(self):
        self.assertEqual(self.round_robin(uthread.BeNice),
                         ["a0", "b0", "c0", "a1", "b1", "c1", "a2", "b2", "c2"])

    def test_yield_from_main_lets_each_runnable_tasklet_run_once(self):
        log = []

        def worker(name):
            log.append(name)
            uthread.Yield()
            log.append(name + " again")

        uthread.new(worker, "a")
        uthread.new(worker, "b")
        uthread.Yield()
        self.assertEqual(log, ["a", "b"])
        stackless.run()


# ---------------------------------------------------------------- channel

class ChannelTest(StacklessTestCase):

    def test_channel_has_preference_zero(self):
        self.assertEqual(uthread.channel().preference, 0)

    def test_send_to_a_waiting_receiver_does_not_switch_to_it(self):
        ch = uthread.channel()
        log = []
        started(lambda: log.append(("received", ch.receive())))
        ch.send("x")
        log.append("sender continued")
        stackless.run()
        self.assertEqual(log, ["sender continued", ("received", "x")])

    def test_receive_from_a_waiting_sender_does_not_switch_to_it(self):
        ch = uthread.channel()
        log = []

        def sender():
            ch.send("x")
            log.append("sender resumed")

        started(sender)
        log.append(("received", ch.receive()))
        stackless.run()
        self.assertEqual(log, [("received", "x"), "sender resumed"])

    def test_woken_receiver_runs_in_its_round_robin_turn(self):
        ch = uthread.channel()
        log = []
        started(lambda: log.append(("received", ch.receive())))
        uthread.new(log.append, "queued before the send")
        ch.send("x")
        stackless.run()
        self.assertEqual(log, ["queued before the send", ("received", "x")])


# ---------------------------------------------------------------- Semaphore

class SemaphoreTest(StacklessTestCase):

    deadline_s = 30.0  # the cross-thread tests hammer for a while

    def test_semaphore_counts_units(self):
        sem = uthread.Semaphore(2)
        self.assertTrue(sem.acquire())
        self.assertTrue(sem.acquire())
        self.assertEqual(sem.value, 0)
        self.assertFalse(sem.acquire(blocking=False))
        sem.release()
        self.assertEqual(sem.value, 1)

    def test_default_value_is_one(self):
        self.assertEqual(uthread.Semaphore().value, 1)

    def test_negative_value_raises_value_error(self):
        with self.assertRaises(ValueError):
            uthread.Semaphore(-1)

    def test_release_without_waiters_adds_a_unit(self):
        sem = uthread.Semaphore(0)
        sem.release()
        sem.release()
        self.assertEqual(sem.value, 2)

    def test_acquire_non_blocking_returns_false_without_switching(self):
        sem = uthread.Semaphore(0)
        log = []
        uthread.new(log.append, "other")
        self.assertFalse(sem.acquire(blocking=False))
        self.assertEqual(log, [])
        self.assertEqual(sem.waiting, 0)
        stackless.run()

    def test_acquire_non_blocking_takes_an_available_unit(self):
        sem = uthread.Semaphore(1)
        self.assertTrue(sem.acquire(False))
        self.assertEqual(sem.value, 0)

    def test_acquire_blocks_until_release(self):
        sem = uthread.Semaphore(0)
        log = []
        t = started(lambda: log.append(sem.acquire()))
        self.assertEqual(log, [])
        self.assertEqual(sem.waiting, 1)
        sem.release()
        stackless.run()
        self.assertEqual(log, [True])
        self.assertFalse(t.alive)

    def test_release_does_not_switch_to_the_woken_waiter(self):
        sem = uthread.Semaphore(0)
        log = []
        started(lambda: log.append(sem.acquire()))
        sem.release()
        self.assertEqual(log, [])
        stackless.run()
        self.assertEqual(log, [True])

    def test_release_hands_the_unit_to_the_waiter_not_to_a_later_acquirer(self):
        sem = uthread.Semaphore(0)
        started(sem.acquire)
        sem.release()
        self.assertEqual(sem.value, 0)
        self.assertFalse(sem.acquire(blocking=False))
        stackless.run()
        self.assertEqual(sem.value, 0)

    def test_waiters_get_units_in_fifo_order(self):
        sem = uthread.Semaphore(0)
        log = []

        def waiter(name):
            sem.acquire()
            log.append(name)

        for name in "abcd":
            started(waiter, name)
        self.assertEqual(sem.waiting, 4)
        sem.release()
        stackless.run()
        self.assertEqual(log, ["a"])
        for _ in range(3):
            sem.release()
        stackless.run()
        self.assertEqual(log, ["a", "b", "c", "d"])

    def test_acquire_timeout_returns_false_after_the_timeout(self):
        sem = uthread.Semaphore(0)
        start = time.monotonic()
        self.assertFalse(sem.acquire(timeout=0.05))
        self.assertGreaterEqual(time.monotonic() - start, 0.05 - EARLY_SLACK_S)
        self.assertEqual(sem.waiting, 0)
        self.assertEqual(sem.value, 0)

    def test_acquire_timeout_returns_true_when_released_in_time(self):
        sem = uthread.Semaphore(0)
        log = []
        started(lambda: log.append(sem.acquire(timeout=5)))
        sem.release()
        stackless.run()
        self.assertEqual(log, [True])
        self.assertEqual(sem.value, 0)

    def test_release_after_a_waiter_timed_out_goes_to_the_count(self):
        sem = uthread.Semaphore(0)
        self.assertFalse(sem.acquire(timeout=0.02))
        sem.release()
        self.assertEqual(sem.value, 1)

    def test_release_after_a_waiter_timed_out_goes_to_the_next_waiter(self):
        sem = uthread.Semaphore(0)
        log = []

        def waiter(name, timeout):
            log.append((name, sem.acquire(timeout=timeout)))

        started(waiter, "impatient", 0.02)
        started(waiter, "patient", None)
        stackless.run()  # returns when the impatient one has timed out
        self.assertEqual(log, [("impatient", False)])
        sem.release()
        stackless.run()
        self.assertEqual(log, [("impatient", False), ("patient", True)])
        self.assertEqual(sem.value, 0)

    def test_release_racing_a_timed_out_waiter_that_has_not_run_is_not_lost(self):
        sem = uthread.Semaphore(0)
        log = []
        t = started(lambda: log.append(sem.acquire(timeout=0.01)))
        busy_for(0.03)
        uthread.Yield()  # the scheduler sees the deadline: t is timed out
        sem.release()
        stackless.run()
        self.assertFalse(t.alive)
        self.assertEqual(sem.value + log.count(True), 1, "unit lost or duplicated: %r" % log)

    def test_acquire_with_negative_timeout_raises_value_error(self):
        with self.assertRaises(ValueError):
            uthread.Semaphore(0).acquire(timeout=-1)

    def test_with_statement_acquires_and_releases(self):
        sem = uthread.Semaphore(2)
        with sem as entered:
            self.assertIs(entered, sem)
            self.assertEqual(sem.value, 1)
        self.assertEqual(sem.value, 2)

    def test_with_statement_releases_on_exception(self):
        sem = uthread.Semaphore(1)
        with self.assertRaises(KeyError):
            with sem:
                raise KeyError("inside")
        self.assertEqual(sem.value, 1)

    def test_with_statement_waits_for_a_unit(self):
        sem = uthread.Semaphore(1)
        log = []

        def user(name):
            with sem:
                log.append(name + " in")
                uthread.Yield()
                log.append(name + " out")

        uthread.new(user, "a")
        uthread.new(user, "b")
        stackless.run()
        self.assertEqual(log, ["a in", "a out", "b in", "b out"])
        self.assertEqual(sem.value, 1)

    def test_killed_waiter_leaves_the_queue_and_the_count(self):
        sem = uthread.Semaphore(0)
        log = []

        def waiter():
            try:
                sem.acquire()
                log.append("acquired")
            finally:
                log.append("finally")

        t = started(waiter)
        t.kill()
        self.assertFalse(t.alive)
        self.assertEqual(log, ["finally"])
        self.assertEqual(sem.waiting, 0)
        self.assertEqual(sem.value, 0)
        sem.release()
        self.assertEqual(sem.value, 1)

    def test_release_after_a_killed_waiter_goes_to_the_next_waiter(self):
        sem = uthread.Semaphore(0)
        log = []
        victim = started(sem.acquire)
        started(lambda: log.append(sem.acquire()))
        victim.kill()
        sem.release()
        stackless.run()
        self.assertEqual(log, [True])
        self.assertEqual(sem.value, 0)

    def test_waiter_killed_after_being_handed_a_unit_gives_it_back(self):
        sem = uthread.Semaphore(0)
        t = started(sem.acquire)
        sem.release()  # the unit is now t's, but t has not run yet
        t.kill()
        self.assertFalse(t.alive)
        self.assertEqual(sem.value, 1)

    def test_unit_of_a_killed_handed_off_waiter_goes_to_the_next_waiter(self):
        sem = uthread.Semaphore(0)
        log = []
        victim = started(sem.acquire)
        started(lambda: log.append(sem.acquire()))
        sem.release()
        victim.kill()
        stackless.run()
        self.assertEqual(log, [True])
        self.assertEqual(sem.value, 0)

    def test_thread_tasklet_release_wakes_a_main_thread_waiter(self):
        sem = uthread.Semaphore(0)

        def releaser():
            wait_until(lambda: sem.waiting == 1, what="main thread waiting")
            sem.release()

        worker = TaskletThread(releaser)
        self.assertTrue(sem.acquire(timeout=5))
        worker.join()
        self.assertEqual(sem.value, 0)

    def test_thread_tasklet_release_wakes_a_main_thread_tasklet(self):
        sem = uthread.Semaphore(0)
        log = []
        t = uthread.new(lambda: log.append(sem.acquire(timeout=5)))

        def releaser():
            wait_until(lambda: sem.waiting == 1, what="main thread tasklet waiting")
            sem.release()

        worker = TaskletThread(releaser)
        run_main_tasklets([t])
        worker.join()
        self.assertEqual(log, [True])

    def test_main_thread_release_wakes_a_thread_tasklet(self):
        sem = uthread.Semaphore(0)
        log = []
        worker = TaskletThread(lambda: log.append(sem.acquire(timeout=5)))
        wait_until(lambda: sem.waiting == 1, what="thread tasklet waiting")
        sem.release()
        worker.join()
        self.assertEqual(log, [True])
        self.assertEqual(sem.value, 0)

    def test_main_thread_kill_of_a_waiting_thread_tasklet_leaves_the_count_right(self):
        sem = uthread.Semaphore(0)
        log = []
        box = {}

        def waiter():
            box["t"] = stackless.getcurrent()
            try:
                sem.acquire()
                log.append("acquired")
            except TaskletExit:
                log.append("TaskletExit")

        worker = TaskletThread(waiter)
        wait_until(lambda: sem.waiting == 1, what="thread tasklet waiting")
        box["t"].kill()
        worker.join()
        self.assertEqual(log, ["TaskletExit"])
        self.assertEqual(sem.waiting, 0)
        sem.release()
        self.assertEqual(sem.value, 1)

    def test_many_threads_hammering_keep_the_count_exact(self):
        limit, threads, tasklets_per_thread, rounds = 3, 4, 3, 150
        sem = uthread.Semaphore(limit)
        guard = threading.Lock()
        inside = [0, 0]  # now, most seen
        done = [0]

        def user():
            for _ in range(rounds):
                sem.acquire()
                with guard:
                    inside[0] += 1
                    inside[1] = max(inside[1], inside[0])
                time.sleep(0)  # let other threads in while holding a unit
                uthread.Yield()
                with guard:
                    inside[0] -= 1
                    done[0] += 1
                sem.release()

        workers = [TaskletThread(*[user] * tasklets_per_thread, timeout=20) for _ in range(threads)]
        mine = [uthread.new(user) for _ in range(tasklets_per_thread)]
        run_main_tasklets(mine, timeout=20)
        for w in workers:
            w.join()
        self.assertEqual(done[0], (threads + 1) * tasklets_per_thread * rounds)
        self.assertLessEqual(inside[1], limit)
        self.assertEqual(sem.value, limit)
        self.assertEqual(sem.waiting, 0)




# ---------------------------------------------------------------- CriticalSection

class LockModelTest(StacklessTestCase):
    """The locks' state is guarded by the GIL alone (waiters.h): Python code that
    runs inside an operation (the GC, a finalizer) can use the same lock."""

    # A thread's first wait makes its scheduler, which allocates: the GC runs
    # there and a finalizer releases the very semaphore being acquired. A lock
    # held across that step deadlocked (the finalizer waited for it, with the GIL).
    CHILD = textwrap.dedent("""
        import gc, threading, uthread
        sem = uthread.Semaphore(0)
        class Releaser:
            def __del__(self):
                sem.release()
        got = []
        def first_wait_of_a_thread():
            gc.disable()
            r = Releaser()
            r.cycle = r
            del r
            gc.set_threshold(1)
            gc.enable()
            got.append(sem.acquire(timeout=5.0))
        t = threading.Thread(target=first_wait_of_a_thread)
        t.start()
        t.join()
        print(got, sem.value)
    """)

    def test_a_finalizer_run_by_a_wait_can_release_the_same_semaphore(self):
        result = run_child([sys.executable, "-c", self.CHILD])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "[True] 0")


class CriticalSectionTest(StacklessTestCase):

    deadline_s = 30.0  # the cross-thread tests hammer for a while

    def test_a_tasklet_reusing_a_dead_owners_object_does_not_own_the_lock(self):
        cs = uthread.CriticalSection()
        owner = stackless.tasklet(cs.acquire)()
        owner.run()  # dies holding the lock
        self.assertFalse(owner.alive)
        address = id(owner)
        del owner  # its object goes to the tasklets' free list
        seen = []
        probe = stackless.tasklet(lambda: seen.append((cs.acquire(blocking=False), cs.owned)))()
        self.assertEqual(id(probe), address, "the scenario needs the dead owner's object reused")
        probe.run()
        self.assertEqual(seen, [(False, False)])
        self.assertTrue(cs.locked)

    def test_owner_can_acquire_again(self):
        cs = uthread.CriticalSection()
        self.assertTrue(cs.acquire())
        self.assertTrue(cs.acquire(blocking=False))
        self.assertTrue(cs.owned)

    def test_lock_is_held_until_released_as_often_as_acquired(self):
        cs = uthread.CriticalSection()
        cs.acquire()
        cs.acquire()
        cs.release()
        self.assertTrue(cs.locked)
        self.assertFalse(run_in_other_tasklet(lambda: cs.acquire(blocking=False)))
        cs.release()
        self.assertFalse(cs.locked)
        self.assertTrue(run_in_other_tasklet(lambda: cs.acquire(blocking=False)))

    def test_other_tasklet_cannot_take_a_held_lock_without_blocking(self):
        cs = uthread.CriticalSection()
        cs.acquire()
        self.assertFalse(run_in_other_tasklet(lambda: cs.acquire(blocking=False)))
        self.assertTrue(cs.owned)

    def test_other_tasklet_blocks_until_the_owner_releases(self):
        cs = uthread.CriticalSection()
        log = []

        def contender():
            cs.acquire()
            log.append(("acquired, owned", cs.owned))
            cs.release()

        cs.acquire()
        started(contender)
        stackless.run()
        self.assertEqual(log, [])
        cs.release()
        stackless.run()
        self.assertEqual(log, [("acquired, owned", True)])
        self.assertFalse(cs.locked)

    def test_owned_is_false_for_other_tasklets(self):
        cs = uthread.CriticalSection()
        cs.acquire()
        self.assertFalse(run_in_other_tasklet(lambda: cs.owned))
        self.assertTrue(run_in_other_tasklet(lambda: cs.locked))

    def test_waiters_get_the_lock_in_fifo_order(self):
        cs = uthread.CriticalSection()
        log = []

        def contender(name):
            with cs:
                log.append(name)
                uthread.Yield()

        cs.acquire()
        for name in "abcd":
            started(contender, name)
        cs.release()
        stackless.run()
        self.assertEqual(log, list("abcd"))

    def test_released_lock_is_reserved_for_the_woken_waiter(self):
        cs = uthread.CriticalSection()
        log = []
        cs.acquire()
        started(lambda: log.append(cs.acquire()))
        cs.release()
        self.assertFalse(cs.acquire(blocking=False), "a barging acquire took the lock from the waiter")
        stackless.run()
        self.assertEqual(log, [True])

    def test_release_by_a_tasklet_that_does_not_hold_it_raises_runtime_error(self):
        cs = uthread.CriticalSection()
        cs.acquire()
        status, error = run_in_tasklet_status(cs.release)
        self.assertEqual(status, "raised")
        self.assertIsInstance(error, RuntimeError)
        self.assertTrue(cs.owned)

    def test_release_of_an_unheld_lock_raises_runtime_error(self):
        with self.assertRaises(RuntimeError):
            uthread.CriticalSection().release()

    def test_acquire_timeout_returns_false_after_the_timeout(self):
        cs = uthread.CriticalSection()
        cs.acquire()
        log = []

        def contender():
            start = time.monotonic()
            log.append((cs.acquire(timeout=0.05), time.monotonic() - start))

        uthread.new(contender)
        stackless.run()
        self.assertEqual(len(log), 1)
        got, elapsed = log[0]
        self.assertFalse(got)
        self.assertGreaterEqual(elapsed, 0.05 - EARLY_SLACK_S)
        self.assertTrue(cs.owned)

    def test_release_after_a_waiter_timed_out_frees_the_lock(self):
        cs = uthread.CriticalSection()
        cs.acquire()
        uthread.new(cs.acquire, True, 0.02)
        stackless.run()
        cs.release()
        self.assertFalse(cs.locked)

    def test_killed_waiter_does_not_get_the_lock(self):
        cs = uthread.CriticalSection()
        log = []

        def waiter():
            try:
                cs.acquire()
                log.append("acquired")
            finally:
                log.append("finally")

        cs.acquire()
        t = started(waiter)
        t.kill()
        self.assertEqual(log, ["finally"])
        cs.release()
        self.assertFalse(cs.locked)
        self.assertTrue(run_in_other_tasklet(lambda: cs.acquire(blocking=False)))

    def test_waiter_killed_after_being_handed_the_lock_passes_it_on(self):
        cs = uthread.CriticalSection()
        log = []
        cs.acquire()
        victim = started(cs.acquire)
        started(lambda: log.append((cs.acquire(), cs.owned)))
        cs.release()  # reserved for the victim, which has not run yet
        victim.kill()
        stackless.run()
        self.assertEqual(log, [(True, True)])

    def test_waiter_killed_after_being_handed_the_lock_frees_it(self):
        cs = uthread.CriticalSection()
        cs.acquire()
        victim = started(cs.acquire)
        cs.release()
        victim.kill()
        self.assertFalse(cs.locked)
        self.assertTrue(cs.acquire(blocking=False))

    def test_tasklets_of_several_threads_are_excluded(self):
        cs = uthread.CriticalSection()
        guard = threading.Lock()
        inside = [0, 0]
        done = [0]
        rounds = 150

        def user():
            for _ in range(rounds):
                with cs:
                    with guard:
                        inside[0] += 1
                        inside[1] = max(inside[1], inside[0])
                    time.sleep(0)
                    with cs:  # re-entrant also under contention
                        uthread.Yield()
                    with guard:
                        inside[0] -= 1
                        done[0] += 1

        workers = [TaskletThread(user, user, timeout=20) for _ in range(3)]
        mine = [uthread.new(user), uthread.new(user)]
        run_main_tasklets(mine, timeout=20)
        for w in workers:
            w.join()
        self.assertEqual(done[0], 8 * rounds)
        self.assertEqual(inside[1], 1)
        self.assertFalse(cs.locked)

    def test_thread_tasklet_release_wakes_a_main_thread_waiter(self):
        cs = uthread.CriticalSection()
        holding, waiting = threading.Event(), threading.Event()

        def holder():
            cs.acquire()
            holding.set()
            waiting.wait(5)
            time.sleep(0.02)
            cs.release()

        worker = TaskletThread(holder)
        self.assertTrue(holding.wait(5))
        waiting.set()
        self.assertTrue(cs.acquire(timeout=5))
        self.assertTrue(cs.owned)
        cs.release()
        worker.join()



def run_in_tasklet_status(func):
    """Run func in a new tasklet to its end; ("ok", value) or ("raised", exc)."""
    box = []

    def body():
        try:
            box.append(("ok", func()))
        except Exception as e:
            box.append(("raised", e))

    t = uthread.new(body)
    while t.alive:
        t.run()
    return box[0]


def run_in_other_tasklet(func):
    status, value = run_in_tasklet_status(func)
    if status == "raised":
        raise value
    return value


# ---------------------------------------------------------------- Event

class EventTest(StacklessTestCase):

    def test_new_event_is_not_set(self):
        self.assertFalse(uthread.Event().is_set())

    def test_wait_blocks_until_set(self):
        ev = uthread.Event()
        log = []
        started(lambda: log.append(ev.wait()))
        stackless.run()
        self.assertEqual(log, [])
        ev.set()
        stackless.run()
        self.assertEqual(log, [True])

    def test_set_does_not_switch_to_a_waiter(self):
        ev = uthread.Event()
        log = []
        started(lambda: log.append("woke"))
        stackless.run()
        log.clear()
        started(lambda: (ev.wait(), log.append("woke")))
        ev.set()
        self.assertEqual(log, [])
        stackless.run()
        self.assertEqual(log, ["woke"])

    def test_set_wakes_every_waiter_in_fifo_order(self):
        ev = uthread.Event()
        log = []

        def waiter(name):
            ev.wait()
            log.append(name)

        for name in "abcd":
            started(waiter, name)
        ev.set()
        stackless.run()
        self.assertEqual(log, list("abcd"))

    def test_wait_after_set_returns_true_at_once(self):
        ev = uthread.Event()
        ev.set()
        log = []
        uthread.new(log.append, "other")
        self.assertTrue(ev.wait())
        self.assertEqual(log, [], "wait() on a set event switched away")
        stackless.run()

    def test_clear_makes_waits_block_again(self):
        ev = uthread.Event()
        ev.set()
        ev.clear()
        self.assertFalse(ev.is_set())
        self.assertFalse(ev.wait(timeout=0.02))

    def test_wait_timeout_returns_false_after_the_timeout(self):
        ev = uthread.Event()
        start = time.monotonic()
        self.assertFalse(ev.wait(0.05))
        self.assertGreaterEqual(time.monotonic() - start, 0.05 - EARLY_SLACK_S)

    def test_timed_out_waiter_is_not_woken_again_by_set(self):
        ev = uthread.Event()
        log = []

        def waiter():
            log.append(ev.wait(timeout=0.02))
            log.append(ev.wait())

        started(waiter)
        stackless.run()
        self.assertEqual(log, [False])
        ev.set()
        stackless.run()
        self.assertEqual(log, [False, True])

    def test_killed_waiter_runs_its_finally_and_set_still_wakes_the_rest(self):
        ev = uthread.Event()
        log = []

        def waiter(name):
            try:
                ev.wait()
                log.append(name)
            finally:
                log.append(name + " finally")

        victim = started(waiter, "victim")
        started(waiter, "other")
        victim.kill()
        ev.set()
        stackless.run()
        self.assertEqual(log, ["victim finally", "other", "other finally"])

    def test_set_from_another_thread_wakes_a_main_thread_waiter(self):
        ev = uthread.Event()

        def setter():
            time.sleep(0.05)
            ev.set()

        worker = TaskletThread(setter)
        self.assertTrue(ev.wait(timeout=5))
        worker.join()

    def test_set_from_the_main_thread_wakes_waiters_of_another_thread(self):
        ev = uthread.Event()
        log = []
        lock = threading.Lock()
        entered = [0]

        def waiter():
            with lock:
                entered[0] += 1
            ok = ev.wait(timeout=5)
            with lock:
                log.append(ok)

        worker = TaskletThread(waiter, waiter, waiter)
        wait_until(lambda: entered[0] == 3, what="thread tasklets waiting")
        time.sleep(0.02)
        ev.set()
        worker.join()
        self.assertEqual(log, [True, True, True])


# ---------------------------------------------------------------- Condition

class ConditionTest(StacklessTestCase):

    deadline_s = 20.0  # the cross-thread tests hammer for a while

    def test_wait_returns_true_after_notify(self):
        cond = uthread.Condition()
        log = []

        def waiter():
            with cond:
                log.append("waiting")
                log.append(cond.wait())

        started(waiter)
        self.assertEqual(log, ["waiting"])
        with cond:
            cond.notify()
        stackless.run()
        self.assertEqual(log, ["waiting", True])

    def test_wait_releases_the_lock_while_waiting(self):
        cond = uthread.Condition()
        started(lambda: (cond.acquire(), cond.wait()))
        self.assertTrue(cond.acquire(blocking=False), "the waiter kept the lock")
        cond.notify()
        cond.release()
        stackless.run()

    def test_notify_wakes_one_waiter_in_fifo_order(self):
        cond = uthread.Condition()
        log = []

        def waiter(name):
            with cond:
                cond.wait()
                log.append(name)

        for name in "abc":
            started(waiter, name)
        with cond:
            cond.notify()
        stackless.run()
        self.assertEqual(log, ["a"])
        with cond:
            cond.notify()
        stackless.run()
        self.assertEqual(log, ["a", "b"])
        with cond:
            cond.notify()
        stackless.run()
        self.assertEqual(log, ["a", "b", "c"])

    def test_notify_n_wakes_n_waiters(self):
        cond = uthread.Condition()
        log = []

        def waiter(name):
            with cond:
                cond.wait()
                log.append(name)

        for name in "abcd":
            started(waiter, name)
        with cond:
            self.assertEqual(cond.notify(2), 2)
        stackless.run()
        self.assertEqual(log, ["a", "b"])
        with cond:
            cond.notify_all()
        stackless.run()

    def test_notify_all_wakes_every_waiter_in_fifo_order(self):
        cond = uthread.Condition()
        log = []

        def waiter(name):
            with cond:
                cond.wait()
                log.append(name)

        for name in "abcd":
            started(waiter, name)
        with cond:
            self.assertEqual(cond.notify_all(), 4)
        stackless.run()
        self.assertEqual(log, list("abcd"))

    def test_notify_without_waiters_is_not_remembered(self):
        cond = uthread.Condition()
        with cond:
            self.assertEqual(cond.notify(), 0)
            self.assertFalse(cond.wait(timeout=0.02))

    def test_notify_does_not_switch_to_the_waiter(self):
        cond = uthread.Condition()
        log = []
        started(lambda: (cond.acquire(), cond.wait(), log.append("woke"), cond.release()))
        cond.acquire()
        cond.notify()
        cond.release()
        self.assertEqual(log, [])
        stackless.run()
        self.assertEqual(log, ["woke"])

    def test_notify_without_holding_the_lock_raises_runtime_error(self):
        cond = uthread.Condition()
        with self.assertRaises(RuntimeError):
            cond.notify()
        with self.assertRaises(RuntimeError):
            cond.notify_all()

    def test_notify_while_another_tasklet_holds_the_lock_raises_runtime_error(self):
        cond = uthread.Condition()
        cond.acquire()
        status, error = run_in_tasklet_status(cond.notify)
        self.assertEqual(status, "raised")
        self.assertIsInstance(error, RuntimeError)

    def test_wait_without_holding_the_lock_raises_runtime_error(self):
        cond = uthread.Condition()
        with self.assertRaises(RuntimeError):
            cond.wait(timeout=0.01)
        # The failed wait left no waiter behind to absorb a notify.
        with cond:
            self.assertEqual(cond.notify(), 0)

    def test_wait_reacquires_the_lock(self):
        cond = uthread.Condition()
        log = []

        def waiter():
            with cond:
                cond.wait()
                log.append(cond._lock.owned)

        started(waiter)
        with cond:
            cond.notify()
        stackless.run()
        self.assertEqual(log, [True])
        self.assertFalse(cond._lock.locked)

    def test_wait_at_depth_two_releases_fully_and_restores_the_depth(self):
        cond = uthread.Condition()
        log = []

        def waiter():
            with cond:
                with cond:
                    cond.wait()
                    log.append("woke")
                log.append(("owned at depth 1", cond._lock.owned))
            log.append(("owned at depth 0", cond._lock.owned))

        started(waiter)
        self.assertTrue(cond.acquire(blocking=False), "wait() at depth 2 kept the lock")
        cond.notify()
        cond.release()
        stackless.run()
        self.assertEqual(log, ["woke", ("owned at depth 1", True), ("owned at depth 0", False)])
        self.assertFalse(cond._lock.locked)

    def test_wait_timeout_returns_false_and_reacquires_the_lock(self):
        cond = uthread.Condition()
        with cond:
            start = time.monotonic()
            self.assertFalse(cond.wait(0.05))
            self.assertGreaterEqual(time.monotonic() - start, 0.05 - EARLY_SLACK_S)
            self.assertTrue(cond._lock.owned)
        self.assertFalse(cond._lock.locked)

    def test_timed_out_waiter_does_not_absorb_a_later_notify(self):
        cond = uthread.Condition()
        log = []

        def waiter(name, timeout):
            with cond:
                log.append((name, cond.wait(timeout)))

        started(waiter, "impatient", 0.02)
        started(waiter, "patient", None)
        stackless.run()
        self.assertEqual(log, [("impatient", False)])
        with cond:
            self.assertEqual(cond.notify(), 1)
        stackless.run()
        self.assertEqual(log, [("impatient", False), ("patient", True)])

    def test_wait_for_returns_at_once_when_the_predicate_holds(self):
        cond = uthread.Condition()
        log = []
        uthread.new(log.append, "other")
        with cond:
            self.assertEqual(cond.wait_for(lambda: "yes"), "yes")
        self.assertEqual(log, [])
        stackless.run()

    def test_wait_for_waits_until_the_predicate_holds(self):
        cond = uthread.Condition()
        state = {"n": 0}
        log = []

        def waiter():
            with cond:
                log.append(cond.wait_for(lambda: state["n"] >= 3, timeout=5))
                log.append(state["n"])

        started(waiter)
        for _ in range(3):
            with cond:
                state["n"] += 1
                cond.notify_all()
            # Not run(): it would also wait out the waiter's 5 s timer.
            uthread.Yield()
        self.assertEqual(log, [True, 3])

    def test_wait_for_timeout_returns_the_false_predicate_value(self):
        cond = uthread.Condition()
        with cond:
            start = time.monotonic()
            self.assertEqual(cond.wait_for(lambda: 0, timeout=0.05), 0)
            self.assertGreaterEqual(time.monotonic() - start, 0.05 - EARLY_SLACK_S)
            self.assertTrue(cond._lock.owned)

    def test_wait_for_timeout_counts_the_whole_wait_not_each_wakeup(self):
        cond = uthread.Condition()
        stop = [False]

        def nagger():
            while not stop[0]:
                uthread.Sleep(0.01)
                with cond:
                    cond.notify_all()

        uthread.new(nagger)
        try:
            with cond:
                start = time.monotonic()
                self.assertFalse(cond.wait_for(lambda: False, timeout=0.1))
                elapsed = time.monotonic() - start
        finally:
            stop[0] = True
        stackless.run()
        self.assertGreaterEqual(elapsed, 0.1 - EARLY_SLACK_S)
        self.assertLess(elapsed, 2.0, "wait_for restarted its timeout at each notify")

    def test_killed_waiter_does_not_keep_the_lock(self):
        cond = uthread.Condition()
        log = []

        def waiter():
            try:
                with cond:
                    cond.wait()
                    log.append("woke")
            except TaskletExit:
                log.append("TaskletExit")
                raise
            finally:
                log.append(("finally, owned", cond._lock.owned))

        t = started(waiter)
        t.kill()
        stackless.run()
        self.assertFalse(t.alive)
        self.assertEqual(log, ["TaskletExit", ("finally, owned", False)])
        self.assertFalse(cond._lock.locked)
        self.assertTrue(cond.acquire(blocking=False))

    def test_waiter_killed_while_the_lock_is_held_reacquires_it_before_dying(self):
        cond = uthread.Condition()
        log = []

        def waiter():
            try:
                with cond:
                    cond.wait()
            finally:
                log.append("finally")

        t = started(waiter)
        cond.acquire()
        t.kill()
        # The dying waiter must re-acquire the lock (then its with-block
        # releases it): it waits for us.
        self.assertEqual(log, [])
        self.assertTrue(cond._lock.owned)
        cond.release()
        stackless.run()
        self.assertFalse(t.alive)
        self.assertEqual(log, ["finally"])
        self.assertFalse(cond._lock.locked)

    def test_waiter_killed_while_reacquiring_the_lock_dies_by_tasklet_exit(self):
        # Notified, then killed while it waits to get the lock back: wait()
        # must still leave the lock held on the way out (its with-block
        # releases it), so the tasklet dies by TaskletExit, not by a
        # RuntimeError from releasing a lock it does not hold.
        cond = uthread.Condition()
        log = []

        def waiter():
            try:
                with cond:
                    cond.wait()
                    log.append("woke")
            except TaskletExit:
                log.append("TaskletExit")
                raise
            except BaseException as e:  # recorded, not let loose on main
                log.append(type(e).__name__)
            finally:
                log.append(("finally, owned", cond._lock.owned))

        t = started(waiter)
        cond.acquire()
        cond.notify()
        uthread.Yield()  # the waiter runs and waits for the lock we hold
        self.assertTrue(t.alive)
        t.kill()
        cond.release()
        stackless.run()
        self.assertFalse(t.alive)
        self.assertEqual(log, ["TaskletExit", ("finally, owned", False)])
        self.assertFalse(cond._lock.locked)

    def test_notify_to_a_waiter_killed_before_it_ran_passes_to_the_next(self):
        cond = uthread.Condition()
        log = []

        def waiter(name):
            with cond:
                cond.wait()
                log.append(name)

        victim = started(waiter, "victim")
        started(waiter, "next")
        cond.acquire()
        self.assertEqual(cond.notify(), 1)
        victim.kill()
        cond.release()
        stackless.run()
        self.assertFalse(victim.alive)
        self.assertEqual(log, ["next"])

    def test_notify_from_another_thread_wakes_a_main_thread_waiter(self):
        cond = uthread.Condition()
        state = []

        def producer():
            time.sleep(0.05)
            with cond:
                state.append("item")
                cond.notify()

        worker = TaskletThread(producer)
        with cond:
            self.assertTrue(cond.wait_for(lambda: state, timeout=5))
        worker.join()

    def test_cross_thread_producer_consumer(self):
        cond = uthread.Condition()
        items = []
        received = []
        count = 300

        def producer():
            for i in range(count):
                with cond:
                    items.append(i)
                    cond.notify()
                if i % 7 == 0:
                    time.sleep(0)

        def consumer():
            while len(received) < count:
                with cond:
                    if not cond.wait_for(lambda: items, timeout=5):
                        raise SuspectedDeadlock("consumer starved")
                    received.extend(items)
                    items.clear()

        worker = TaskletThread(consumer)
        producer_thread = TaskletThread(producer)
        producer_thread.join()
        worker.join()
        self.assertEqual(received, list(range(count)))

    def test_condition_over_a_given_critical_section(self):
        cs = uthread.CriticalSection()
        cond = uthread.Condition(cs)
        with cs:
            self.assertTrue(cond._lock.owned)
            self.assertEqual(cond.notify(), 0)



# ---------------------------------------------------------------- Queue

class QueueTest(StacklessTestCase):

    deadline_s = 30.0  # the cross-thread tests hammer for a while

    def test_items_come_out_in_fifo_order(self):
        q = uthread.Queue()
        for i in range(5):
            q.put(i)
        self.assertEqual([q.get() for _ in range(5)], list(range(5)))

    def test_qsize_empty_and_full(self):
        q = uthread.Queue(maxsize=2)
        self.assertTrue(q.empty())
        q.put(1)
        self.assertEqual(q.qsize(), 1)
        self.assertFalse(q.full())
        q.put(2)
        self.assertTrue(q.full())
        self.assertFalse(q.empty())

    def test_unbounded_queue_is_never_full(self):
        q = uthread.Queue()
        for i in range(1000):
            q.put_nowait(i)
        self.assertFalse(q.full())
        self.assertEqual(q.qsize(), 1000)

    def test_get_blocks_until_an_item_is_put(self):
        q = uthread.Queue()
        log = []
        started(lambda: log.append(q.get()))
        stackless.run()
        self.assertEqual(log, [])
        q.put("item")
        stackless.run()
        self.assertEqual(log, ["item"])

    def test_blocked_getters_are_served_in_fifo_order(self):
        q = uthread.Queue()
        log = []

        def getter(name):
            log.append((name, q.get()))

        for name in "abc":
            started(getter, name)
        for i in range(3):
            q.put(i)
        stackless.run()
        self.assertEqual(log, [("a", 0), ("b", 1), ("c", 2)])

    def test_put_blocks_while_the_queue_is_at_maxsize(self):
        q = uthread.Queue(maxsize=1)
        log = []
        q.put(1)

        def putter():
            q.put(2)
            log.append("put done")

        started(putter)
        stackless.run()
        self.assertEqual(log, [])
        self.assertEqual(q.get(), 1)
        stackless.run()
        self.assertEqual(log, ["put done"])
        self.assertEqual(q.get(), 2)

    def test_blocked_putters_keep_their_order(self):
        q = uthread.Queue(maxsize=1)
        q.put("first")
        for name in ("a", "b", "c"):
            started(q.put, name)
        got = []
        for _ in range(4):
            got.append(q.get())
            stackless.run()
        self.assertEqual(got, ["first", "a", "b", "c"])

    def test_get_timeout_raises_timeout_error(self):
        q = uthread.Queue()
        start = time.monotonic()
        with self.assertRaises(TimeoutError):
            q.get(timeout=0.05)
        self.assertGreaterEqual(time.monotonic() - start, 0.05 - EARLY_SLACK_S)

    def test_put_timeout_raises_timeout_error(self):
        q = uthread.Queue(maxsize=1)
        q.put(1)
        start = time.monotonic()
        with self.assertRaises(TimeoutError):
            q.put(2, timeout=0.05)
        self.assertGreaterEqual(time.monotonic() - start, 0.05 - EARLY_SLACK_S)
        self.assertEqual(q.qsize(), 1)

    def test_get_timeout_returns_an_item_put_in_time(self):
        q = uthread.Queue()
        log = []
        started(lambda: log.append(q.get(timeout=5)))
        q.put("in time")
        stackless.run()
        self.assertEqual(log, ["in time"])

    def test_get_nowait_on_an_empty_queue_raises_timeout_error(self):
        with self.assertRaises(TimeoutError):
            uthread.Queue().get_nowait()

    def test_get_nowait_returns_an_available_item(self):
        q = uthread.Queue()
        q.put("x")
        self.assertEqual(q.get_nowait(), "x")

    def test_put_nowait_on_a_full_queue_raises_timeout_error(self):
        q = uthread.Queue(maxsize=1)
        q.put_nowait(1)
        with self.assertRaises(TimeoutError):
            q.put_nowait(2)
        self.assertEqual(q.get_nowait(), 1)
        self.assertTrue(q.empty())

    def test_nowait_calls_do_not_switch(self):
        q = uthread.Queue(maxsize=1)
        log = []
        uthread.new(log.append, "other")
        q.put_nowait(1)
        self.assertRaises(TimeoutError, q.put_nowait, 2)
        q.get_nowait()
        self.assertRaises(TimeoutError, q.get_nowait)
        self.assertEqual(log, [])
        stackless.run()

    def test_timed_out_getter_does_not_take_a_later_item(self):
        q = uthread.Queue()
        log = []

        def impatient():
            try:
                q.get(timeout=0.02)
            except TimeoutError:
                log.append("timed out")

        started(impatient)
        started(lambda: log.append(("patient", q.get())))
        stackless.run()
        self.assertEqual(log, ["timed out"])
        q.put("item")
        stackless.run()
        self.assertEqual(log, ["timed out", ("patient", "item")])

    def test_killed_getter_does_not_lose_an_item(self):
        q = uthread.Queue()
        log = []
        victim = started(q.get)
        started(lambda: log.append(q.get()))
        q.put("item")
        victim.kill()
        stackless.run()
        self.assertEqual(log + list(q._items), ["item"])

    def test_cross_thread_producer_to_main_thread_consumer(self):
        q = uthread.Queue(maxsize=8)
        count = 1000

        def producer():
            for i in range(count):
                q.put(i, timeout=5)

        worker = TaskletThread(producer)
        got = [q.get(timeout=5) for _ in range(count)]
        worker.join()
        self.assertEqual(got, list(range(count)))
        self.assertTrue(q.empty())

    def test_main_thread_producer_to_cross_thread_consumer(self):
        q = uthread.Queue(maxsize=8)
        count = 1000
        got = []

        def consumer():
            for _ in range(count):
                got.append(q.get(timeout=5))

        worker = TaskletThread(consumer)
        for i in range(count):
            q.put(i, timeout=5)
        worker.join()
        self.assertEqual(got, list(range(count)))

    def test_several_producer_threads_deliver_every_item_once_in_per_producer_order(self):
        q = uthread.Queue(maxsize=4)
        producers, count = 3, 300

        def producer(p):
            def body():
                for i in range(count):
                    q.put((p, i), timeout=5)
            return body

        workers = [TaskletThread(producer(p)) for p in range(producers)]
        got = [q.get(timeout=5) for _ in range(producers * count)]
        for w in workers:
            w.join()
        for p in range(producers):
            self.assertEqual([i for (pp, i) in got if pp == p], list(range(count)))
        self.assertTrue(q.empty())



# ---------------------------------------------------------------- parallel

class ParallelTest(StacklessTestCase):

    def test_results_come_back_in_the_order_of_the_callables(self):
        def after(seconds, value):
            def body():
                uthread.Sleep(seconds)
                return value
            return body

        results = uthread.parallel([after(0.06, "slow"), after(0.0, "instant"), after(0.03, "mid")])
        self.assertEqual(results, ["slow", "instant", "mid"])

    def test_waits_for_every_callable(self):
        done = []

        def worker(seconds, name):
            def body():
                uthread.Sleep(seconds)
                done.append(name)
            return body

        uthread.parallel([worker(0.05, "a"), worker(0.01, "b"), worker(0.03, "c")])
        self.assertEqual(sorted(done), ["a", "b", "c"])

    def test_callables_run_concurrently(self):
        start = time.monotonic()
        uthread.parallel([lambda: uthread.Sleep(0.2) for _ in range(5)])
        self.assertLess(time.monotonic() - start, 0.2 * 5, "callables ran one after another")

    def test_empty_list_returns_an_empty_list(self):
        self.assertEqual(uthread.parallel([]), [])

    def test_accepts_any_iterable(self):
        self.assertEqual(uthread.parallel(iter([lambda: 1, lambda: 2])), [1, 2])

    def test_first_error_is_reraised(self):
        def late_error():
            uthread.Sleep(0.05)
            raise ValueError("late")

        def early_error():
            raise KeyError("early")

        with self.assertRaises(KeyError):
            uthread.parallel([late_error, early_error])

    def test_error_kills_the_others_and_their_finally_blocks_run(self):
        log = []

        def slow(name):
            def body():
                try:
                    uthread.Sleep(5)
                    log.append(name + " finished")
                except TaskletExit:
                    log.append(name + " killed")
                    raise
                finally:
                    log.append(name + " finally")
            return body

        def failing():
            uthread.Sleep(0.01)
            raise ValueError("boom")

        start = time.monotonic()
        with self.assertRaises(ValueError):
            uthread.parallel([slow("a"), failing, slow("b")])
        self.assertLess(time.monotonic() - start, 2.0, "parallel waited for the others after an error")
        self.assertEqual(sorted(log), ["a finally", "a killed", "b finally", "b killed"])
        self.assertEqual(stackless.getruncount(), 1)

    def test_timeout_raises_timeout_error(self):
        start = time.monotonic()
        with self.assertRaises(TimeoutError):
            uthread.parallel([lambda: uthread.Sleep(5), lambda: None], timeout=0.05)
        elapsed = time.monotonic() - start
        self.assertGreaterEqual(elapsed, 0.05 - EARLY_SLACK_S)
        self.assertLess(elapsed, 2.0)

    def test_timeout_kills_the_unfinished_callables_and_their_finally_blocks_run(self):
        log = []

        def slow():
            try:
                uthread.Sleep(5)
                log.append("finished")
            finally:
                log.append("finally")

        def blocked():
            try:
                uthread.Event().wait()
            finally:
                log.append("blocked finally")

        with self.assertRaises(TimeoutError):
            uthread.parallel([slow, blocked, lambda: log.append("quick")], timeout=0.05)
        self.assertEqual(sorted(log), ["blocked finally", "finally", "quick"])
        stackless.run()
        self.assertEqual(sorted(log), ["blocked finally", "finally", "quick"])

    def test_killing_the_caller_kills_the_callables(self):
        log = []

        def slow():
            try:
                uthread.Sleep(5)
                log.append("finished")
            finally:
                log.append("callable finally")

        def caller():
            try:
                uthread.parallel([slow, slow])
            finally:
                log.append("caller finally")

        t = started(caller)
        uthread.Yield()  # the callables start and sleep
        t.kill()
        stackless.run()
        self.assertFalse(t.alive)
        self.assertEqual(sorted(log), ["callable finally", "callable finally", "caller finally"])

    def test_finishing_within_the_timeout_returns_results(self):
        self.assertEqual(uthread.parallel([lambda: "a", lambda: "b"], timeout=5), ["a", "b"])


if __name__ == "__main__":
    unittest.main()
