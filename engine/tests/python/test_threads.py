"""Threads: a scheduler per OS thread, cross-thread channels, bind_thread."""

import gc
import sys
import textwrap
import threading
import time
import unittest

import _engine
import stackless
from support import StacklessTestCase, expect_leaked, join_or_fail, result_in_new_thread, run_child, start_thread, wait_until
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)


class SchedulerPerThreadTest(StacklessTestCase):

    def in_thread(self, func):
        return result_in_new_thread(func)

    def test_new_thread_has_its_own_main_tasklet(self):
        other_main = self.in_thread(stackless.getmain)
        self.assertIsNot(other_main, stackless.getmain())

    def test_new_thread_starts_on_its_main_tasklet(self):
        self.assertTrue(self.in_thread(lambda: stackless.getcurrent() is stackless.getmain()))

    def test_new_thread_runnable_queue_is_independent(self):
        stackless.tasklet(lambda: None)()
        self.assertEqual(self.in_thread(stackless.getruncount), 1)
        self.assertEqual(stackless.getruncount(), 2)
        stackless.run()

    def test_thread_main_tasklet_reports_its_thread_id(self):
        tid, ident = self.in_thread(
            lambda: (stackless.getcurrent().thread_id, threading.get_ident()))
        self.assertEqual(tid, ident)

    def test_tasklets_run_in_the_thread_that_created_them(self):
        def work():
            where = []
            stackless.tasklet(lambda: where.append(threading.get_ident()))()
            stackless.run()
            return where, threading.get_ident()

        where, ident = self.in_thread(work)
        self.assertEqual(where, [ident])

    def test_exception_in_thread_tasklet_reaches_that_threads_run(self):
        def work():
            def failing():
                raise KeyError("thread")
            stackless.tasklet(failing)()
            try:
                stackless.run()
            except KeyError:
                return "caught in thread"
            return "not raised"

        self.assertEqual(self.in_thread(work), "caught in thread")

    def live_thread(self, use_stackless):
        """Start a thread that waits; return (thread, release event)."""
        ready, release = threading.Event(), threading.Event()

        def target():
            if use_stackless:
                stackless.getcurrent()
            ready.set()
            release.wait(5)

        thread = start_thread(target)
        self.addCleanup(join_or_fail, thread)
        self.addCleanup(release.set)
        self.assertTrue(ready.wait(5), "suspected deadlock: thread did not start")
        return thread

    def test_threads_attribute_lists_a_live_thread_that_used_stackless(self):
        thread = self.live_thread(use_stackless=True)
        self.assertIn(thread.ident, stackless.threads)

    def test_threads_attribute_lists_the_main_thread_first(self):
        self.live_thread(use_stackless=True)
        self.assertEqual(stackless.threads[0], threading.main_thread().ident)

    def test_threads_attribute_lists_every_python_thread(self):
        # Stackless docs: "A list of all thread ids, starting with the id of
        # the main thread" -- also threads that never touched stackless.
        thread = self.live_thread(use_stackless=False)
        self.assertIn(thread.ident, stackless.threads)

    def test_get_thread_info_of_a_thread_that_never_ran_tasklets(self):
        thread = self.live_thread(use_stackless=False)
        self.assertEqual(stackless.get_thread_info(thread.ident), (None, None, 0))

    def test_get_thread_info_of_another_thread(self):
        ready, release = threading.Event(), threading.Event()
        box = {}

        def target():
            box["main"] = stackless.getmain()
            ready.set()
            release.wait(5)

        thread = start_thread(target)
        try:
            self.assertTrue(ready.wait(5), "suspected deadlock: thread did not start")
            main, current, runcount = stackless.get_thread_info(thread.ident)
            self.assertIs(main, box["main"])
            self.assertIs(current, box["main"])
            self.assertEqual(runcount, 1)
        finally:
            release.set()
            join_or_fail(thread)


class CrossThreadChannelTest(StacklessTestCase):

    def test_main_thread_receives_from_another_thread(self):
        c = stackless.channel()

        def sender():
            time.sleep(0.05)  # let the main thread block first
            c.send("from thread")

        thread = start_thread(sender)
        self.assertEqual(c.receive(), "from thread")
        join_or_fail(thread)

    def test_other_thread_receives_from_the_main_thread(self):
        c = stackless.channel()
        got = []
        thread = start_thread(lambda: got.append(c.receive()))
        wait_until(lambda: c.balance == -1, what="receiver in other thread blocked")
        c.send("from main")
        join_or_fail(thread)
        self.assertEqual(got, ["from main"])

    def test_main_thread_send_waits_for_a_receiver_in_another_thread(self):
        c = stackless.channel()
        got = []

        def receiver():
            time.sleep(0.05)  # let the main thread block in send first
            got.append(c.receive())

        thread = start_thread(receiver)
        c.send("blocking send")
        join_or_fail(thread)
        self.assertEqual(got, ["blocking send"])

    def test_other_thread_send_waits_for_the_main_thread_receiver(self):
        c = stackless.channel()
        thread = start_thread(c.send, "waiting sender")
        wait_until(lambda: c.balance == 1, what="sender in other thread blocked")
        self.assertEqual(c.receive(), "waiting sender")
        join_or_fail(thread)

    def test_blocked_main_thread_is_woken_to_run_a_tasklet_made_runnable_by_another_thread(self):
        c, done = stackless.channel(), stackless.channel()

        def local_receiver():
            done.send(("local got", c.receive()))

        stackless.tasklet(local_receiver)()

        def remote_sender():
            wait_until(lambda: c.balance == -1, what="local receiver blocked")
            c.send("wake")

        thread = start_thread(remote_sender)
        self.assertEqual(done.receive(), ("local got", "wake"))
        join_or_fail(thread)

    def test_ping_pong_between_threads(self):
        ping, pong = stackless.channel(), stackless.channel()

        def echo():
            for _ in range(100):
                pong.send(ping.receive() + 1)

        thread = start_thread(echo)
        value = 0
        for _ in range(100):
            ping.send(value)
            value = pong.receive()
        join_or_fail(thread)
        self.assertEqual(value, 100)

    def test_both_threads_running_schedulers_exchange_messages(self):
        # The "interthread channel usage" example of the Stackless docs.
        commands = stackless.channel()
        received = []

        def master():
            for word in ("ECHO 1", "ECHO 2", "QUIT"):
                commands.send(word)

        def scheduler_run(func):
            t = stackless.tasklet(func)()
            end = time.monotonic() + 5
            while t.alive and time.monotonic() < end:
                stackless.run()
                time.sleep(0.0005)

        def slave():
            while True:
                command = commands.receive()
                received.append(command)
                if command == "QUIT":
                    break

        thread = start_thread(scheduler_run, master)
        scheduler_run(slave)
        join_or_fail(thread)
        self.assertEqual(received, ["ECHO 1", "ECHO 2", "QUIT"])


class CrossThreadKillTest(StacklessTestCase):

    def test_killing_a_running_tasklet_of_another_thread_raises_in_that_thread_not_in_the_caller(self):
        started = threading.Event()
        outcome = []

        def worker():
            me = stackless.getcurrent()
            box.append(me)
            started.set()
            try:
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    stackless.schedule()  # a switch point: a pending kill is raised here
                outcome.append("never killed")
            except TaskletExit:
                outcome.append("TaskletExit")

        box = []
        thread = start_thread(worker)
        self.assertTrue(started.wait(5))
        box[0].kill()  # must not raise TaskletExit here
        join_or_fail(thread)
        self.assertEqual(outcome, ["TaskletExit"])


class ThreadblockTest(StacklessTestCase):

    def test_run_without_threadblock_returns_while_a_thread_could_still_wake_a_tasklet(self):
        c = stackless.channel()
        got = []
        stackless.tasklet(lambda: got.append(c.receive()))()
        release = threading.Event()

        def sender():
            release.wait()
            c.send("late")

        thread = start_thread(sender)
        stackless.run()
        self.assertEqual(got, [])
        release.set()
        join_or_fail(thread)
        stackless.run()
        self.assertEqual(got, ["late"])

    def test_run_with_threadblock_waits_for_another_thread_to_wake_a_tasklet(self):
        c = stackless.channel()
        got = []
        stackless.tasklet(lambda: got.append(c.receive()))()

        def sender():
            time.sleep(0.1)
            c.send("from thread")

        thread = start_thread(sender)
        stackless.run(threadblock=True)
        self.assertEqual(got, ["from thread"])
        join_or_fail(thread)


class BindThreadTest(StacklessTestCase):

    def test_bind_thread_moves_an_unstarted_tasklet_to_another_thread(self):
        ran_in = []
        t = stackless.tasklet(lambda: ran_in.append(threading.get_ident()), ())

        def adopt_and_run():
            t.bind_thread()
            t.insert()
            stackless.run()

        thread = start_thread(adopt_and_run)
        join_or_fail(thread)
        self.assertEqual(ran_in, [thread.ident])

    def test_bind_thread_changes_thread_id(self):
        t = stackless.tasklet(lambda: None, ())
        box = {}

        def adopt():
            t.bind_thread()
            box["tid"] = t.thread_id
            t.kill()

        thread = start_thread(adopt)
        join_or_fail(thread)
        self.assertEqual(box["tid"], thread.ident)

    def test_bind_thread_of_a_started_tasklet_with_c_state_raises_runtime_error(self):
        c = stackless.channel()
        # Blocked inside sorted()'s key callback: C frames on its stack.
        t = stackless.tasklet(lambda: sorted([2, 1], key=lambda x: c.receive()))()
        t.run()
        self.assertTrue(t.blocked)
        ready, release = threading.Event(), threading.Event()

        def other_thread():
            stackless.getcurrent()  # make sure it has a scheduler
            ready.set()
            release.wait(5)

        thread = start_thread(other_thread)
        try:
            self.assertTrue(ready.wait(5), "suspected deadlock: thread did not start")
            with self.assertRaises(RuntimeError):
                t.bind_thread(thread.ident)
            self.assertEqual(t.thread_id, threading.get_ident())
        finally:
            release.set()
            join_or_fail(thread)
        t.kill()

    def test_tasklet_of_an_ended_thread_reports_thread_id_minus_one(self):
        box = {}

        def make():
            box["t"] = stackless.tasklet(lambda: None, ())

        join_or_fail(start_thread(make))
        self.assertEqual(box["t"].thread_id, -1)

    def test_main_tasklet_of_an_ended_thread_reports_thread_id_minus_one(self):
        box = {}
        join_or_fail(start_thread(lambda: box.setdefault("main", stackless.getmain())))
        self.assertEqual(box["main"].thread_id, -1)

    def test_unstarted_tasklet_of_an_ended_thread_can_be_adopted_and_run(self):
        box, ran_in = {}, []

        def make():
            box["t"] = stackless.tasklet(lambda: ran_in.append(threading.get_ident()), ())

        join_or_fail(start_thread(make))
        t = box["t"]
        t.bind_thread()
        self.assertEqual(t.thread_id, threading.get_ident())
        t.insert()
        stackless.run()
        self.assertEqual(ran_in, [threading.get_ident()])


class ThreadEndTest(StacklessTestCase):
    def test_a_thread_that_used_a_timed_run_keeps_no_tasklet_once_it_ended(self):
        def objects():
            gc.collect()
            return _engine.resource_counts()["tasklet_objects"]

        def target():
            for _ in range(5):
                stackless.tasklet(lambda: sum(range(1000)))()
            stackless.run(timeout=10**6)  # timed: the longest slice is recorded

        before = objects()
        for _ in range(3):
            join_or_fail(start_thread(target))
        self.assertEqual(objects(), before)

    def test_an_ended_threads_scheduler_is_freed_with_the_last_tasklet_naming_it(self):
        def schedulers():
            gc.collect()
            return _engine.resource_counts()["schedulers"]

        before = schedulers()
        kept = []

        def target():
            c = stackless.channel()
            stackless.tasklet(c.send)(1)
            c.receive()
            kept.append(stackless.tasklet(lambda: None))  # never run: outlives the thread

        join_or_fail(start_thread(target))
        self.assertEqual(kept[0].thread_id, -1)
        self.assertEqual(schedulers(), before + 1, "the kept tasklet still names its thread's scheduler")
        kept.clear()
        self.assertEqual(schedulers(), before, "the last tasklet naming it is gone: the scheduler is freed")


    def start_thread_leaving_a_blocked_tasklet(self, log):
        box = {}

        def target():
            c = stackless.channel()

            def blocked():
                try:
                    c.receive()
                finally:
                    log.append("finally")

            box["t"] = stackless.tasklet(blocked)()
            box["t"].run()

        join_or_fail(start_thread(target))
        return box["t"]

    def test_blocked_tasklet_of_an_ended_thread_reports_thread_id_minus_one(self):
        t = self.start_thread_leaving_a_blocked_tasklet([])
        self.assertEqual(t.thread_id, -1)

    def test_kill_lets_go_of_a_tasklet_that_survived_its_threads_end(self):
        # As Stackless's TestKill.test_kill_without_thread_state_blocked: the
        # tasklet refuses to die when its thread ends and stays blocked.
        box = {}

        def target():
            c = box["c"] = stackless.channel()

            def stubborn():
                while True:
                    try:
                        c.receive()
                    except TaskletExit:
                        pass

            box["t"] = stackless.tasklet(stubborn)()
            box["t"].run()

        join_or_fail(start_thread(target))
        t, c = box["t"], box["c"]
        self.assertTrue(t.blocked)
        self.assertEqual(t.thread_id, -1)
        self.assertFalse(t.alive)
        with self.assertRaisesRegex(RuntimeError, "tasklet has no thread"):
            t.throw(TaskletExit, pending=True)
        t.kill(pending=True)
        self.assertFalse(t.blocked)
        self.assertFalse(t.scheduled)
        self.assertEqual(c.balance, 0)
        # Its C stack can never be unwound: dropping it reports the leaked stack.
        expect_leaked("stack_blocks", 1, "a tasklet that outlived its thread keeps its C stack")

    def test_blocked_tasklet_with_c_state_is_killed_when_its_thread_ends(self):
        # Stackless docs (threads): "When a thread dies, only tasklets with a
        # C-state are actively killed." Every started tasklet here has one.
        log = []
        t = self.start_thread_leaving_a_blocked_tasklet(log)
        wait_until(lambda: log == ["finally"], timeout=2.0, what="tasklet killed")
        self.assertFalse(t.alive)



class RemoteTaskletTest(StacklessTestCase):
    """Tasklets of another thread, as in Stackless's test_thread: its scheduler
    is theirs, ours is untouched."""

    def start_thread_with_tasklet(self, action, schedule=False, remove=False):
        """A thread that creates tasklet(action)() and lingers until the cleanup;
        with `schedule` it keeps running its scheduler while it lingers."""
        made, shutdown = threading.Event(), threading.Event()
        box = {}

        def target():
            box["t"] = t = stackless.tasklet(action)()
            if remove:
                t.remove()
            made.set()
            while not shutdown.is_set():
                if schedule:
                    stackless.run()
                time.sleep(0.001)

        thread = start_thread(target)
        self.addCleanup(join_or_fail, thread)
        self.addCleanup(shutdown.set)
        self.assertTrue(made.wait(5), "suspected deadlock: thread did not start")
        return thread, box["t"]

    def test_remove_of_a_runnable_tasklet_of_another_thread_leaves_our_runcount(self):
        before = stackless.getruncount()
        thread, t = self.start_thread_with_tasklet(lambda: None)
        self.assertTrue(t.scheduled)
        t.remove()
        self.assertFalse(t.scheduled)
        self.assertTrue(t.paused)
        self.assertEqual(stackless.getruncount(), before)

    def test_remove_reaches_a_tasklet_another_thread_just_made_runnable(self):
        # A channel partner of a thread waiting idle goes straight into that
        # thread's ring, so remove() right after the send takes it out again
        # and it never runs (it used to sit in a hand-over queue remove() could
        # not see, and ran anyway).
        c, resume, log = stackless.channel(), stackless.channel(), []
        box, blocked = {}, threading.Event()

        def target():
            def receiver():
                log.append(c.receive())

            box["t"] = stackless.tasklet(receiver)()
            box["t"].run()  # blocks in c.receive()
            blocked.set()
            resume.receive()  # this thread waits idle, GIL released
            log.append("resumed")

        thread = start_thread(target)
        self.assertTrue(blocked.wait(5), "suspected deadlock: thread did not start")
        wait_until(lambda: resume.balance == -1, timeout=5.0, what="the thread waiting on resume")
        t = box["t"]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(10)  # the thread gets the GIL only once we block
        try:
            c.send("value")
            self.assertTrue(t.scheduled)
            t.remove()
        finally:
            sys.setswitchinterval(interval)
        self.assertFalse(t.scheduled)
        resume.send(None)
        join_or_fail(thread)
        self.assertEqual(log, ["resumed"])
        t.kill()

    def test_run_of_a_tasklet_of_another_thread_runs_it_in_that_thread(self):
        ran_in = []
        thread, t = self.start_thread_with_tasklet(lambda: ran_in.append(threading.get_ident()),
                                                   schedule=True, remove=True)
        before = stackless.getruncount()
        self.assertIsNone(t.run())
        self.assertEqual(stackless.getruncount(), before)
        wait_until(lambda: ran_in, what="remote tasklet ran")
        self.assertEqual(ran_in, [thread.ident])
        wait_until(lambda: not t.alive, what="remote tasklet ended")

    def test_run_of_a_tasklet_of_a_waiting_thread_runs_it_before_the_runnable_ones(self):
        # As Stackless's TestRemoteSchedule.testRunOrder: that thread's main
        # waits on a channel; what run() hands it runs first.
        order, made = [], threading.Event()
        box = {}
        done = stackless.channel()

        def target():
            box["ts"] = [stackless.tasklet(lambda i=i: (order.append(i), done.send(None)))().remove()
                         for i in range(3)]
            made.set()
            for _ in range(3):
                done.receive()

        thread = start_thread(target)
        self.assertTrue(made.wait(5), "suspected deadlock: thread did not start")
        t0, t1, t2 = box["ts"]
        with stackless.atomic():
            t1.insert()
            t2.insert()
            t0.run()
        join_or_fail(thread)
        self.assertEqual(order, [0, 1, 2])

    def test_switch_to_a_tasklet_of_another_thread_raises_runtime_error(self):
        thread, t = self.start_thread_with_tasklet(lambda: None, remove=True)
        with self.assertRaisesRegex(RuntimeError, "different thread"):
            t.switch()
        self.assertTrue(t.paused)

    def test_bind_thread_of_a_runnable_tasklet_of_another_thread_raises_runtime_error(self):
        thread, t = self.start_thread_with_tasklet(lambda: None)
        with self.assertRaisesRegex(RuntimeError, "runnable"):
            t.bind_thread()
        self.assertEqual(t.thread_id, thread.ident)

    def test_runnable_and_removed_tasklets_of_an_ended_thread_are_not_alive(self):
        box = {}

        def make():
            box["runnable"] = stackless.tasklet(lambda: None)()
            box["removed"] = stackless.tasklet(lambda: None)().remove()

        join_or_fail(start_thread(make))
        self.assertFalse(box["runnable"].alive)
        self.assertFalse(box["removed"].alive)
        self.assertFalse(box["removed"].paused)


class BindDuringLastSwitchTest(StacklessTestCase):

    def test_bind_is_refused_while_a_dead_tasklet_still_holds_its_stack(self):
        # The other thread's main waits on a channel, so the tasklet's last
        # switch waits idle (GIL released) for another thread: the tasklet
        # already reports dead but its stack block is still in use.
        wake = stackless.channel()
        box = {}

        def target():
            box["t"] = stackless.tasklet(lambda: None)()
            wake.receive()

        thread = start_thread(target)
        try:
            wait_until(lambda: "t" in box and not box["t"].alive, what="tasklet ended")
            t = box["t"]
            with self.assertRaisesRegex(RuntimeError, "C state"):
                t.bind(lambda: None, ())
            with self.assertRaisesRegex(RuntimeError, "C state"):
                t.bind_thread()
            self.assertEqual(t.thread_id, thread.ident)
        finally:
            wake.send(None)
            join_or_fail(thread)
        # Its last switch is over now: it may be bound anew and run here.
        ran = []
        t.bind(lambda: ran.append(1), ())
        t.bind_thread()
        t.run()
        self.assertEqual(ran, [1])


@unittest.skipIf(_engine.SANITIZED, "ASan cannot follow the forced unwind (pthread_exit) these provoke: its CHECK in"
                 " __asan_handle_no_return fails; the normal build runs them")
class DaemonThreadTaskletAtExitTest(StacklessTestCase):
    """A daemon thread's tasklet (on its own fiber) that takes the interpreter
    lock back while the interpreter finalizes: CPython 3.11's pthread_exit
    unwound into the tasklet's noexcept body and std::terminate aborted the
    process. The child's finalizer keeps the interpreter finalizing until the
    tasklet's sleep ends."""

    CHILD = textwrap.dedent("""
        import os, sys, threading, time, stackless
        class SlowTeardown:
            def __del__(self, sleep=time.sleep, write=os.write):
                write(1, b"finalizing\\n")
                sleep(0.4)
        cycle = SlowTeardown()
        cycle.me = cycle  # collected by the finalization's last collection
        sys.modules["slow_teardown"] = cycle
        del cycle
        import _engine
        started = threading.Event()
        def in_tasklet():
            stackless.tasklet(lambda: (started.set(), time.sleep(0.1)))()
            stackless.run()
        def in_engine_wait():
            started.set()
            _engine.sleep_in_worker(0.1)  # the main tasklet waits inside the engine's C++
        threading.Thread(target=in_engine_wait if ENGINE_WAIT else in_tasklet, daemon=True).start()
        started.wait()
        print("leaving", flush=True)
    """)

    def assert_exits_cleanly(self, engine_wait):
        child = "ENGINE_WAIT = %r\n" % engine_wait + self.CHILD
        result = run_child([sys.executable, "-X", "faulthandler", "-c", child])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), ["leaving", "finalizing"])
        self.assertNotIn("terminate", result.stderr)

    def test_a_daemon_threads_tasklet_outliving_the_interpreter_does_not_abort_the_process(self):
        self.assert_exits_cleanly(False)

    def test_a_daemon_thread_waiting_in_the_engine_at_exit_does_not_abort_the_process(self):
        # The unwind went through the C++/Python boundary's catch (...), which
        # swallowed it: "FATAL: exception not rethrown".
        self.assert_exits_cleanly(True)


if __name__ == "__main__":
    unittest.main()
