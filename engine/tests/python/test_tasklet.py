"""tasklet: life cycle, properties and the methods that move it around."""

import threading
import unittest

import stackless
from support import StacklessTestCase
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)


def noop():
    pass


class LifecycleTest(StacklessTestCase):

    def test_unbound_tasklet_is_not_alive(self):
        t = stackless.tasklet()
        self.assertFalse(t.alive)
        self.assertFalse(t.scheduled)

    def test_tasklet_bound_with_args_is_alive_and_paused(self):
        t = stackless.tasklet(noop, ())
        self.assertTrue(t.alive)
        self.assertTrue(t.paused)
        self.assertFalse(t.scheduled)
        self.assertFalse(t.blocked)

    def test_call_inserts_the_tasklet_into_the_runnable_queue(self):
        t = stackless.tasklet(noop)()
        self.assertTrue(t.alive)
        self.assertTrue(t.scheduled)
        self.assertFalse(t.paused)
        self.assertFalse(t.blocked)
        self.assertEqual(stackless.getruncount(), 2)
        stackless.run()

    def test_tasklet_runs_its_function_with_args_and_kwargs(self):
        got = []
        stackless.tasklet(lambda *a, **k: got.append((a, k)))(1, 2, key="v")
        stackless.run()
        self.assertEqual(got, [((1, 2), {"key": "v"})])

    def test_finished_tasklet_is_not_alive_and_not_scheduled(self):
        t = stackless.tasklet(noop)()
        stackless.run()
        self.assertFalse(t.alive)
        self.assertFalse(t.scheduled)
        self.assertFalse(t.blocked)
        self.assertFalse(t.paused)

    def test_blocked_tasklet_reports_blocked_and_scheduled(self):
        c = stackless.channel()
        t = stackless.tasklet(c.receive)()
        t.run()
        self.assertTrue(t.alive)
        self.assertTrue(t.blocked)
        self.assertTrue(t.scheduled)
        self.assertFalse(t.paused)
        c.send(None)

    def test_tasklets_run_in_fifo_order(self):
        log = []
        for i in range(5):
            stackless.tasklet(log.append)(i)
        stackless.run()
        self.assertEqual(log, [0, 1, 2, 3, 4])

    def test_schedule_round_robins_between_tasklets(self):
        log = []

        def worker(name):
            for i in range(3):
                log.append((name, i))
                stackless.schedule()

        stackless.tasklet(worker)("a")
        stackless.tasklet(worker)("b")
        stackless.run()
        self.assertEqual(log, [("a", 0), ("b", 0), ("a", 1), ("b", 1), ("a", 2), ("b", 2)])

    def test_setup_on_alive_tasklet_raises_runtime_error(self):
        t = stackless.tasklet(noop)()
        with self.assertRaises(RuntimeError):
            t.setup()
        stackless.run()

    def test_run_on_dead_tasklet_raises_runtime_error(self):
        t = stackless.tasklet(noop)()
        stackless.run()
        with self.assertRaises(RuntimeError):
            t.run()

    def test_subclassed_tasklet_runs_and_is_current_inside(self):
        seen = []

        class MyTasklet(stackless.tasklet):
            def __init__(self, func, label):
                super().__init__(func)
                self.label = label

        def body():
            seen.append((type(stackless.getcurrent()), stackless.getcurrent().label))

        t = MyTasklet(body, "mine")
        t()
        stackless.run()
        self.assertEqual(seen, [(MyTasklet, "mine")])
        self.assertFalse(t.alive)

    def test_subclass_instance_keeps_extra_attributes(self):
        class MyTasklet(stackless.tasklet):
            pass

        t = MyTasklet(noop)
        t.extra = 5
        self.assertEqual(t.extra, 5)
        self.assertIsInstance(t, stackless.tasklet)


class PropertiesTest(StacklessTestCase):

    def test_frame_is_none_before_start(self):
        t = stackless.tasklet(noop)()
        self.assertIsNone(t.frame)
        stackless.run()

    def test_frame_is_none_after_end(self):
        t = stackless.tasklet(noop)()
        stackless.run()
        self.assertIsNone(t.frame)

    def test_frame_of_blocked_tasklet_is_its_python_frame(self):
        c = stackless.channel()

        def blocked_body():
            c.receive()

        t = stackless.tasklet(blocked_body)()
        t.run()
        self.assertIs(t.frame.f_code, blocked_body.__code__)
        c.send(None)

    def test_frame_of_blocked_tasklet_is_the_innermost_frame(self):
        c = stackless.channel()

        def inner():
            c.receive()

        def outer():
            inner()

        t = stackless.tasklet(outer)()
        t.run()
        self.assertIs(t.frame.f_code, inner.__code__)
        self.assertIs(t.frame.f_back.f_code, outer.__code__)
        c.send(None)

    def test_is_current_and_is_main_inside_a_tasklet(self):
        seen = []

        def body():
            me = stackless.getcurrent()
            main = stackless.getmain()
            seen.append((me.is_current, me.is_main, main.is_current, main.is_main))

        stackless.tasklet(body)()
        stackless.run()
        self.assertEqual(seen, [(True, False, False, True)])

    def test_main_tasklet_is_current_and_main_on_main(self):
        main = stackless.getmain()
        self.assertTrue(main.is_current)
        self.assertTrue(main.is_main)
        self.assertTrue(main.alive)

    def test_next_and_prev_link_the_runnable_queue(self):
        main = stackless.getmain()
        t1 = stackless.tasklet(noop)()
        t2 = stackless.tasklet(noop)()
        self.assertIs(main.next, t1)
        self.assertIs(t1.next, t2)
        self.assertIs(t2.next, main)
        self.assertIs(t2.prev, t1)
        self.assertIs(t1.prev, main)
        self.assertIs(main.prev, t2)
        stackless.run()

    def test_next_and_prev_are_none_for_a_paused_tasklet(self):
        t = stackless.tasklet(noop, ())
        self.assertIsNone(t.next)
        self.assertIsNone(t.prev)

    def test_tempval_is_settable(self):
        t = stackless.tasklet(noop, ())
        t.tempval = "stored"
        self.assertEqual(t.tempval, "stored")

    def test_name_defaults_to_none(self):
        self.assertIsNone(stackless.tasklet().name)

    def test_name_is_settable(self):
        t = stackless.tasklet(noop)
        t.name = "worker-1"
        self.assertEqual(t.name, "worker-1")

    def test_thread_id_of_new_tasklet_is_the_creating_thread(self):
        self.assertEqual(stackless.tasklet(noop).thread_id, threading.get_ident())

    def test_restorable_is_a_bool(self):
        self.assertIsInstance(stackless.tasklet(noop, ()).restorable, bool)

    def test_set_atomic_returns_the_old_value_and_sets_atomic(self):
        current = stackless.getcurrent()
        self.assertFalse(current.atomic)
        old = current.set_atomic(True)
        try:
            self.assertFalse(old)
            self.assertTrue(current.atomic)
            self.assertTrue(current.set_atomic(True))
        finally:
            current.set_atomic(old)
        self.assertFalse(current.atomic)

    def test_atomic_context_manager_sets_and_restores_atomic(self):
        current = stackless.getcurrent()
        with stackless.atomic():
            self.assertTrue(current.atomic)
        self.assertFalse(current.atomic)

    def test_atomic_context_manager_restores_on_exception(self):
        current = stackless.getcurrent()
        with self.assertRaises(KeyError):
            with stackless.atomic():
                raise KeyError
        self.assertFalse(current.atomic)

    def test_atomic_flag_is_per_tasklet(self):
        seen = []
        with stackless.atomic():
            stackless.tasklet(lambda: seen.append(stackless.getcurrent().atomic))()
            stackless.run()
        self.assertEqual(seen, [False])

    def test_set_ignore_nesting_returns_old_value(self):
        current = stackless.getcurrent()
        old = current.set_ignore_nesting(True)
        try:
            self.assertFalse(old)
            self.assertTrue(current.ignore_nesting)
        finally:
            current.set_ignore_nesting(old)
        self.assertFalse(current.ignore_nesting)

    def test_block_trap_is_settable(self):
        t = stackless.tasklet(noop, ())
        self.assertFalse(t.block_trap)
        t.block_trap = True
        self.assertTrue(t.block_trap)

    def test_block_trap_prevents_blocking_on_receive(self):
        c = stackless.channel()

        def body():
            stackless.getcurrent().block_trap = True
            c.receive()

        t = stackless.tasklet(body)()
        with self.assertRaises(RuntimeError):
            stackless.run()
        self.assertFalse(t.alive)
        self.assertEqual(c.balance, 0)

    def test_block_trap_prevents_blocking_on_send(self):
        c = stackless.channel()
        errors = []

        def body():
            stackless.getcurrent().block_trap = True
            try:
                c.send(1)
            except RuntimeError:
                errors.append("trapped")

        stackless.tasklet(body)()
        stackless.run()
        self.assertEqual(errors, ["trapped"])
        self.assertEqual(c.balance, 0)

    def test_block_trap_allows_a_non_blocking_receive(self):
        c = stackless.channel()
        stackless.tasklet(c.send)(5)
        stackless.schedule()  # let the sender block
        current = stackless.getcurrent()
        current.block_trap = True
        try:
            self.assertEqual(c.receive(), 5)
        finally:
            current.block_trap = False
        stackless.run()


class QueueMovesTest(StacklessTestCase):

    def test_remove_pauses_a_runnable_tasklet(self):
        t = stackless.tasklet(noop)()
        t.remove()
        self.assertTrue(t.paused)
        self.assertFalse(t.scheduled)
        self.assertEqual(stackless.getruncount(), 1)
        t.kill()

    def test_insert_makes_a_removed_tasklet_runnable_again(self):
        ran = []
        t = stackless.tasklet(ran.append)(1)
        t.remove()
        t.insert()
        self.assertTrue(t.scheduled)
        stackless.run()
        self.assertEqual(ran, [1])

    def test_insert_of_blocked_tasklet_raises_runtime_error(self):
        c = stackless.channel()
        t = stackless.tasklet(c.receive)()
        t.run()
        with self.assertRaises(RuntimeError):
            t.insert()
        c.send(None)

    def test_insert_of_dead_tasklet_raises_runtime_error(self):
        t = stackless.tasklet(noop)()
        stackless.run()
        with self.assertRaises(RuntimeError):
            t.insert()

    def test_run_of_scheduled_tasklet_runs_it_and_the_rest_of_the_queue(self):
        log = []
        t1 = stackless.tasklet(log.append)("t1")
        t2 = stackless.tasklet(log.append)("t2")
        t3 = stackless.tasklet(log.append)("t3")
        t2.run()
        self.assertEqual(log, ["t2", "t3"])
        self.assertTrue(t1.scheduled)
        stackless.run()
        self.assertEqual(log, ["t2", "t3", "t1"])

    def test_run_of_removed_tasklet_runs_it_immediately(self):
        log = []
        t = stackless.tasklet(log.append)("t")
        t.remove()
        t.run()
        self.assertEqual(log, ["t"])
        self.assertFalse(t.alive)

    def test_switch_pauses_the_caller(self):
        seen = []
        main = stackless.getmain()

        def body():
            seen.append((main.paused, main.scheduled))
            main.insert()

        t = stackless.tasklet(body)()
        t.switch()
        self.assertEqual(seen, [(True, False)])
        self.assertFalse(t.alive)

    def test_switch_to_a_blocked_tasklet_raises_runtime_error(self):
        c = stackless.channel()
        t = stackless.tasklet(c.receive)()
        t.run()
        with self.assertRaises(RuntimeError):
            t.switch()
        self.assertTrue(t.blocked)
        c.send(None)

    def test_schedule_remove_pauses_the_caller_until_inserted(self):
        log = []

        def body():
            log.append("before")
            stackless.schedule_remove()
            log.append("after")

        t = stackless.tasklet(body)()
        stackless.run()
        self.assertEqual(log, ["before"])
        self.assertTrue(t.paused)
        t.insert()
        stackless.run()
        self.assertEqual(log, ["before", "after"])

    def test_schedule_remove_returns_the_tempval_set_while_paused(self):
        got = []

        def body():
            got.append(stackless.schedule_remove())

        t = stackless.tasklet(body)()
        stackless.run()
        t.tempval = "result"
        t.insert()
        stackless.run()
        self.assertEqual(got, ["result"])

    def test_schedule_returns_retval(self):
        got = []
        stackless.tasklet(lambda: got.append(stackless.schedule(11)))()
        stackless.run()
        self.assertEqual(got, [11])

    def test_schedule_without_retval_returns_the_current_tasklet_in_a_tasklet(self):
        got = []

        def body():
            got.append(stackless.schedule() is stackless.getcurrent())

        stackless.tasklet(body)()
        stackless.run()
        self.assertEqual(got, [True])


class StacklessBindingRulesTest(StacklessTestCase):
    """bind/setup/insert/remove/bind_thread behave and are worded as Stackless's."""

    def assert_message(self, error, text, target, /, *args, **kwargs):
        with self.assertRaises(error) as cm:
            target(*args, **kwargs)
        self.assertEqual(str(cm.exception), text)

    def paused_started_tasklet(self):
        t = stackless.tasklet(stackless.schedule_remove)()
        t.run()
        self.assertTrue(t.paused)
        return t

    def test_tempval_of_a_bound_tasklet_is_its_function(self):
        self.assertIs(stackless.tasklet(noop).tempval, noop)

    def test_tempval_of_a_tasklet_given_its_arguments_is_none(self):
        self.assertIsNone(stackless.tasklet(noop, ()).tempval)

    def test_setting_tempval_of_a_bound_tasklet_rebinds_its_function(self):
        log = []
        t = stackless.tasklet(noop)
        t.tempval = log.append
        t.setup("rebound")
        stackless.run()
        self.assertEqual(log, ["rebound"])

    def test_insert_returns_the_tasklet(self):
        t = stackless.tasklet(noop, ())
        self.assertIs(t.insert(), t)
        stackless.run()

    def test_unbinding_a_scheduled_tasklet(self):
        t = stackless.tasklet(noop)()
        self.assert_message(RuntimeError, "tasklet is scheduled", t.bind, None)
        stackless.run()

    def test_binding_the_current_tasklet(self):
        self.assert_message(RuntimeError, "can't (re)bind the current tasklet", stackless.getcurrent().bind, noop)

    def test_binding_a_started_tasklet(self):
        t = self.paused_started_tasklet()
        self.assert_message(RuntimeError, "tasklet has C state on its stack", t.bind, None)
        t.kill()

    def test_setup_of_an_unbound_tasklet(self):
        self.assert_message(RuntimeError, "the tasklet was not bound to a function", stackless.tasklet().setup)

    def test_removing_the_current_tasklet(self):
        self.assert_message(RuntimeError, "The current tasklet cannot be removed.", stackless.getcurrent().remove)

    def test_removing_a_blocked_tasklet(self):
        c = stackless.channel()
        t = stackless.tasklet(c.receive)()
        t.run()
        self.assert_message(RuntimeError, "You cannot remove a blocked tasklet.", t.remove)
        c.send(None)

    def test_bind_thread_of_a_runnable_tasklet(self):
        t = stackless.tasklet(noop)()
        self.assert_message(RuntimeError, "can't (re)bind a runnable tasklet", t.bind_thread, threading.get_ident())
        stackless.run()

    def test_bind_thread_of_a_started_tasklet(self):
        t = self.paused_started_tasklet()
        self.assert_message(RuntimeError, "tasklet has C state on its stack", t.bind_thread, threading.get_ident())
        t.kill()

    def test_bind_thread_to_a_thread_without_tasklets(self):
        t = stackless.tasklet(noop, ())
        self.assert_message(ValueError, "bad thread", t.bind_thread, max(stackless.threads) + 1)


class RestorableTest(StacklessTestCase):
    """Tasklets cannot be pickled here, so none can be restored by unpickling."""

    def test_a_new_tasklet_is_not_restorable(self):
        self.assertIs(stackless.tasklet(noop, ()).restorable, False)

    def test_a_finished_tasklet_is_not_restorable(self):
        t = stackless.tasklet(noop)()
        stackless.run()
        self.assertIs(t.restorable, False)

    def test_a_started_tasklet_is_not_restorable(self):
        t = stackless.tasklet(stackless.schedule_remove)()
        t.run()
        self.assertIs(t.restorable, False)
        t.kill()

    def test_the_main_tasklet_is_not_restorable(self):
        self.assertIs(stackless.getmain().restorable, False)


if __name__ == "__main__":
    unittest.main()


class RecursionDepthAndNestingLevelTest(StacklessTestCase):
    """Stackless's tasklet.recursion_depth and tasklet.nesting_level: both start at zero."""

    def test_a_new_tasklet_starts_at_recursion_depth_zero(self):
        seen = []

        def body():
            seen.append(stackless.current.recursion_depth)

        t = stackless.tasklet(body)()
        self.assertEqual(t.recursion_depth, 0)
        t.run()
        self.assertEqual(seen, [1])  # the tasklet's function itself

    def test_recursion_depth_follows_the_calls_and_is_kept_while_suspended(self):
        seen = []

        def recurse(n):
            if n == 0:
                seen.append(stackless.current.recursion_depth)
                stackless.schedule_remove()
                return
            recurse(n - 1)

        t = stackless.tasklet(recurse)(5)
        t.run()
        self.assertEqual(seen, [6])
        # Read from its saved state, which counts the schedule_remove() call it
        # is suspended in.
        self.assertEqual(t.recursion_depth, 7)
        t.kill()
        self.assertEqual(t.recursion_depth, 0)

    def test_nesting_level_is_zero_in_the_tasklet_function_and_grows_in_a_callback_from_c(self):
        seen = []

        class Probe:
            def __init__(self):
                # type.__call__ (C) runs this in a nested evaluation loop
                seen.append(stackless.current.nesting_level)
                stackless.schedule_remove()

        def body():
            seen.append(stackless.current.nesting_level)
            Probe()

        t = stackless.tasklet(body)()
        self.assertEqual(t.nesting_level, 0)
        t.run()
        self.assertEqual(seen, [0, 1])
        self.assertEqual(t.nesting_level, 1)  # suspended inside __init__
        t.kill()


class ChannelAttributeTest(StacklessTestCase):

    def test_channel_is_the_channel_a_tasklet_is_blocked_on(self):
        ch = stackless.channel()
        t = stackless.tasklet(ch.receive)()
        self.assertIsNone(t._channel)
        t.run()
        self.assertIs(t._channel, ch)
        ch.send(None)
        self.assertIsNone(t._channel)
