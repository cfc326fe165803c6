"""kill / raise_exception / throw on tasklets in every state.

States: never run (scheduled, not started), runnable (started, waiting in the
queue after schedule()), blocked on a channel, paused (removed), atomic, the
current tasklet itself, and dead.
"""

import sys
import traceback
import unittest

import stackless
from support import StacklessTestCase
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)

TaskletExit = stackless.TaskletExit


class Probe:
    """A tasklet body that records what happens to it.

    TaskletExit is recorded and re-raised (so the tasklet dies); any other
    exception is recorded and swallowed (so it does not escape to main).
    """

    def __init__(self, wait):
        self.log = []
        self.wait = wait  # callable that suspends the tasklet

    def __call__(self):
        self.log.append("started")
        try:
            self.wait()
            self.log.append("resumed")
        except TaskletExit as e:
            self.log.append(("raised", type(e).__name__, e.args))
            raise
        except Exception as e:
            self.log.append(("raised", type(e).__name__, e.args))
        finally:
            self.log.append("finally")


def blocked_probe(channel=None):
    c = channel or stackless.channel()
    probe = Probe(c.receive)
    t = stackless.tasklet(probe)()
    t.run()
    return probe, t, c


def runnable_probe():
    probe = Probe(stackless.schedule)
    t = stackless.tasklet(probe)()
    t.run()  # runs up to schedule(); t is back in the queue, main continues
    return probe, t


def paused_probe():
    probe = Probe(stackless.schedule_remove)
    t = stackless.tasklet(probe)()
    t.run()
    return probe, t


TASKLET_EXIT = ("raised", "TaskletExit", ())


class KillTest(StacklessTestCase):

    def test_kill_blocked_tasklet_raises_taskletexit_in_it(self):
        probe, t, c = blocked_probe()
        t.kill()
        self.assertEqual(probe.log, ["started", TASKLET_EXIT, "finally"])

    def test_kill_blocked_tasklet_ends_it(self):
        probe, t, c = blocked_probe()
        t.kill()
        self.assertFalse(t.alive)
        self.assertFalse(t.blocked)

    def test_kill_blocked_tasklet_restores_channel_balance(self):
        probe, t, c = blocked_probe()
        self.assertEqual(c.balance, -1)
        t.kill()
        self.assertEqual(c.balance, 0)
        self.assertIsNone(c.queue)

    def test_kill_one_of_several_blocked_tasklets_keeps_the_others_queued(self):
        c = stackless.channel()
        p1, t1, _ = blocked_probe(c)
        p2, t2, _ = blocked_probe(c)
        t1.kill()
        self.assertEqual(c.balance, -1)
        self.assertIs(c.queue, t2)
        c.send("v")
        self.assertEqual(p2.log[:2], ["started", "resumed"])

    def test_kill_runnable_tasklet_raises_taskletexit_at_its_switch_point(self):
        probe, t = runnable_probe()
        t.kill()
        self.assertEqual(probe.log, ["started", TASKLET_EXIT, "finally"])
        self.assertFalse(t.alive)

    def test_kill_paused_tasklet_raises_taskletexit_in_it(self):
        probe, t = paused_probe()
        t.kill()
        self.assertEqual(probe.log, ["started", TASKLET_EXIT, "finally"])
        self.assertFalse(t.alive)

    def test_kill_never_run_tasklet_discards_it(self):
        ran = []
        t = stackless.tasklet(ran.append)(1)
        t.kill()
        self.assertFalse(t.alive)
        stackless.run()
        self.assertEqual(ran, [])

    def test_kill_never_run_tasklet_removes_it_from_the_queue(self):
        t = stackless.tasklet(lambda: None)()
        t.kill()
        self.assertFalse(t.scheduled)
        self.assertEqual(stackless.getruncount(), 1)

    def test_kill_never_run_paused_tasklet_discards_it(self):
        ran = []
        t = stackless.tasklet(ran.append, (1,))
        t.kill()
        self.assertFalse(t.alive)
        self.assertEqual(ran, [])

    def test_kill_atomic_tasklet_raises_taskletexit_in_it(self):
        log = []
        c = stackless.channel()

        def body():
            with stackless.atomic():
                try:
                    c.receive()
                except TaskletExit:
                    log.append(("exit", stackless.getcurrent().atomic))
                    raise

        t = stackless.tasklet(body)()
        t.run()
        t.kill()
        self.assertEqual(log, [("exit", True)])
        self.assertFalse(t.alive)

    def test_kill_dead_tasklet_does_nothing(self):
        t = stackless.tasklet(lambda: None)()
        stackless.run()
        t.kill()
        self.assertFalse(t.alive)

    def test_kill_current_tasklet_raises_taskletexit_immediately(self):
        log = []

        def body():
            try:
                stackless.getcurrent().kill()
                log.append("not reached")
            except TaskletExit:
                log.append("killed")
                raise

        t = stackless.tasklet(body)()
        t.run()
        self.assertEqual(log, ["killed"])
        self.assertFalse(t.alive)

    def test_kill_pending_only_makes_blocked_tasklet_runnable(self):
        probe, t, c = blocked_probe()
        t.kill(pending=True)
        self.assertEqual(probe.log, ["started"])
        self.assertTrue(t.alive)
        self.assertTrue(t.scheduled)
        self.assertFalse(t.blocked)
        self.assertEqual(c.balance, 0)
        stackless.run()
        self.assertEqual(probe.log, ["started", TASKLET_EXIT, "finally"])
        self.assertFalse(t.alive)

    def test_kill_pending_on_paused_tasklet_makes_it_runnable(self):
        probe, t = paused_probe()
        t.kill(pending=True)
        self.assertEqual(probe.log, ["started"])
        self.assertTrue(t.scheduled)
        stackless.run()
        self.assertEqual(probe.log, ["started", TASKLET_EXIT, "finally"])

    def test_kill_pending_on_an_unstarted_paused_tasklet_schedules_the_kill(self):
        log = []
        t = stackless.tasklet(lambda: log.append("ran"))()
        t.remove()
        t.kill(pending=True)
        self.assertTrue(t.alive)
        self.assertTrue(t.scheduled)
        stackless.run()
        self.assertEqual(log, [])
        self.assertFalse(t.alive)

    def test_kill_pending_on_runnable_tasklet_kills_it_when_it_runs(self):
        probe, t = runnable_probe()
        t.kill(pending=True)
        self.assertEqual(probe.log, ["started"])
        stackless.run()
        self.assertEqual(probe.log, ["started", TASKLET_EXIT, "finally"])

    def test_taskletexit_escaping_a_tasklet_is_silent(self):
        probe, t, c = blocked_probe()
        t.kill(pending=True)
        self.assertIsNone(stackless.run())

    def test_tasklet_that_catches_taskletexit_survives_kill(self):
        log = []
        c = stackless.channel()

        def stubborn():
            try:
                c.receive()
            except TaskletExit:
                log.append("caught")
            log.append(("got", c.receive()))

        t = stackless.tasklet(stubborn)()
        t.run()
        t.kill()
        self.assertEqual(log, ["caught"])
        self.assertTrue(t.blocked)
        c.send(1)
        self.assertEqual(log, ["caught", ("got", 1)])


class RaiseExceptionTest(StacklessTestCase):

    def test_raise_exception_on_blocked_tasklet(self):
        probe, t, c = blocked_probe()
        t.raise_exception(ValueError, "a", 2)
        self.assertEqual(probe.log, ["started", ("raised", "ValueError", ("a", 2)), "finally"])
        self.assertEqual(c.balance, 0)

    def test_raise_exception_escaping_the_tasklet_reaches_the_caller(self):
        c = stackless.channel()
        t = stackless.tasklet(c.receive)()
        t.run()
        with self.assertRaises(ValueError):
            t.raise_exception(ValueError)
        self.assertFalse(t.alive)

    def test_raise_exception_on_runnable_tasklet(self):
        log = []

        def body():
            try:
                stackless.schedule()
            except KeyError as e:
                log.append(e.args)

        t = stackless.tasklet(body)()
        t.run()
        t.raise_exception(KeyError, "k")
        self.assertEqual(log, [("k",)])
        self.assertFalse(t.alive)

    def test_raise_exception_on_atomic_tasklet(self):
        log = []
        c = stackless.channel()

        def body():
            with stackless.atomic():
                try:
                    c.receive()
                except KeyError:
                    log.append("caught")

        t = stackless.tasklet(body)()
        t.run()
        t.raise_exception(KeyError)
        self.assertEqual(log, ["caught"])

    def test_raise_exception_on_never_run_tasklet_reaches_the_caller(self):
        ran = []
        t = stackless.tasklet(ran.append)(1)
        with self.assertRaises(KeyError):
            t.raise_exception(KeyError)
        self.assertEqual(ran, [])
        self.assertFalse(t.alive)

    def test_raise_exception_on_dead_tasklet_raises_runtime_error(self):
        t = stackless.tasklet(lambda: None)()
        stackless.run()
        with self.assertRaises(RuntimeError):
            t.raise_exception(ValueError)

    def test_raise_exception_taskletexit_on_dead_tasklet_is_allowed(self):
        t = stackless.tasklet(lambda: None)()
        stackless.run()
        t.raise_exception(TaskletExit)
        self.assertFalse(t.alive)


class ThrowTest(StacklessTestCase):

    def catching_blocked_tasklet(self):
        log = []
        c = stackless.channel()

        def body():
            try:
                c.receive()
            except Exception as e:
                log.append(e)
                log.append("".join(traceback.format_tb(sys.exc_info()[2])))

        t = stackless.tasklet(body)()
        t.run()
        return log, t

    def test_throw_class_on_blocked_tasklet(self):
        log, t = self.catching_blocked_tasklet()
        t.throw(IndexError)
        self.assertIsInstance(log[0], IndexError)
        self.assertFalse(t.alive)

    def test_throw_class_with_args_tuple(self):
        log, t = self.catching_blocked_tasklet()
        t.throw(IndexError, (1, 2, 3))
        self.assertEqual(log[0].args, (1, 2, 3))

    def test_throw_instance_delivers_that_instance(self):
        log, t = self.catching_blocked_tasklet()
        exc = IndexError("inst")
        t.throw(exc)
        self.assertIs(log[0], exc)

    def test_throw_with_traceback_keeps_it(self):
        log, t = self.catching_blocked_tasklet()

        def origin_of_error():
            1 / 0

        try:
            origin_of_error()
        except ZeroDivisionError:
            t.throw(*sys.exc_info())
        self.assertIsInstance(log[0], ZeroDivisionError)
        self.assertIn("origin_of_error", log[1])

    def test_throw_switches_to_the_target_immediately(self):
        log, t = self.catching_blocked_tasklet()
        t.throw(IndexError)
        self.assertEqual(len(log), 2)

    def test_throw_pending_only_makes_the_target_runnable(self):
        log, t = self.catching_blocked_tasklet()
        t.throw(IndexError, pending=True)
        self.assertEqual(log, [])
        self.assertTrue(t.scheduled)
        self.assertFalse(t.blocked)
        stackless.run()
        self.assertIsInstance(log[0], IndexError)

    def test_throw_on_runnable_tasklet(self):
        log = []

        def body():
            try:
                stackless.schedule()
            except IndexError:
                log.append("caught")

        t = stackless.tasklet(body)()
        t.run()
        t.throw(IndexError)
        self.assertEqual(log, ["caught"])

    def test_throw_on_atomic_tasklet(self):
        log = []
        c = stackless.channel()

        def body():
            with stackless.atomic():
                try:
                    c.receive()
                except IndexError:
                    log.append(stackless.getcurrent().atomic)

        t = stackless.tasklet(body)()
        t.run()
        t.throw(IndexError)
        self.assertEqual(log, [True])

    def test_throw_on_never_run_tasklet_reaches_the_caller(self):
        ran = []
        t = stackless.tasklet(ran.append)(1)
        with self.assertRaises(IndexError):
            t.throw(IndexError)
        self.assertEqual(ran, [])

    def test_throw_pending_on_never_run_tasklet_is_raised_by_run(self):
        ran = []
        t = stackless.tasklet(ran.append)(1)
        t.throw(IndexError, pending=True)
        self.assertTrue(t.alive)
        with self.assertRaises(IndexError):
            stackless.run()
        self.assertEqual(ran, [])

    def test_throw_taskletexit_on_never_run_tasklet_discards_it(self):
        ran = []
        t = stackless.tasklet(ran.append)(1)
        t.throw(TaskletExit)
        stackless.run()
        self.assertEqual(ran, [])
        self.assertFalse(t.alive)

    def test_throw_on_dead_tasklet_raises_runtime_error(self):
        t = stackless.tasklet(lambda: None)()
        stackless.run()
        with self.assertRaises(RuntimeError):
            t.throw(IndexError)

    def test_throw_taskletexit_on_dead_tasklet_is_allowed(self):
        t = stackless.tasklet(lambda: None)()
        stackless.run()
        t.throw(TaskletExit)
        self.assertFalse(t.alive)


class ExceptionPropagationTest(StacklessTestCase):

    def test_exception_escaping_a_tasklet_is_raised_by_run(self):
        def failing():
            raise ZeroDivisionError("from tasklet")

        stackless.tasklet(failing)()
        with self.assertRaisesRegex(ZeroDivisionError, "from tasklet"):
            stackless.run()

    def test_exception_escaping_a_tasklet_leaves_other_tasklets_queued(self):
        log = []

        def looper():
            stackless.schedule()
            log.append("looper done")

        def failing():
            raise ZeroDivisionError

        stackless.tasklet(looper)()
        stackless.tasklet(failing)()
        with self.assertRaises(ZeroDivisionError):
            stackless.run()
        stackless.run()
        self.assertEqual(log, ["looper done"])

    def test_exception_escaping_a_tasklet_reaches_a_blocked_main(self):
        def failing():
            raise ZeroDivisionError("to main")

        stackless.tasklet(failing)()
        with self.assertRaisesRegex(ZeroDivisionError, "to main"):
            stackless.channel().receive()

    def test_exception_escaping_a_tasklet_carries_its_traceback(self):
        def failing_in_tasklet():
            raise ZeroDivisionError

        stackless.tasklet(failing_in_tasklet)()
        try:
            stackless.run()
        except ZeroDivisionError:
            names = [e.name for e in traceback.extract_tb(sys.exc_info()[2])]
        else:
            self.fail("run() did not raise")
        self.assertIn("failing_in_tasklet", names)

    def test_system_exit_escaping_a_tasklet_is_raised_by_run(self):
        stackless.tasklet(sys.exit)(5)
        with self.assertRaises(SystemExit) as cm:
            stackless.run()
        self.assertEqual(cm.exception.code, 5)


if __name__ == "__main__":
    unittest.main()
