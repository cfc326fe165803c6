"""The stackless module's surface: exports, attributes, signatures, TypeErrors."""

import builtins
import threading
import unittest

import stackless
from support import StacklessTestCase
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)


def record_call(log):
    def func(*args, **kwargs):
        log.append((args, kwargs))
    return func


class ExportsTest(StacklessTestCase):

    def test_star_import_exports_the_documented_names(self):
        namespace = {}
        exec("from stackless import *", namespace)
        expected = {"atomic", "channel", "tasklet", "getcurrent", "getmain",
                    "getruncount", "get_thread_info", "run", "schedule",
                    "schedule_remove", "stackless"}
        missing = expected - set(namespace)
        self.assertEqual(missing, set())

    def test_star_import_stackless_name_is_the_module(self):
        namespace = {}
        exec("from stackless import *", namespace)
        self.assertIs(namespace["stackless"], stackless)

    def test_module_has_attribute_style_accessors(self):
        for name in ("current", "main", "runcount", "threads", "enable_softswitch",
                     "TaskletExit"):
            with self.subTest(name=name):
                self.assertTrue(hasattr(stackless, name))

    def test_current_and_main_are_the_main_tasklet_on_the_main_tasklet(self):
        self.assertIs(stackless.current, stackless.getcurrent())
        self.assertIs(stackless.main, stackless.getmain())
        self.assertIs(stackless.current, stackless.main)

    def test_module_attributes_follow_the_running_tasklet(self):
        seen = []

        def body():
            seen.append((stackless.current, stackless.getcurrent(), stackless.main,
                         stackless.runcount, stackless.getruncount()))

        t = stackless.tasklet(body)()
        other = stackless.tasklet(lambda: None)()
        stackless.run()
        current, getcurrent, main, runcount, getruncount = seen[0]
        self.assertIs(current, t)
        self.assertIs(getcurrent, t)
        self.assertIs(main, stackless.getmain())
        # run() takes the calling main tasklet out of the queue (as in
        # Stackless), so t and other are the runnable ones here.
        self.assertEqual(runcount, getruncount)
        self.assertEqual(runcount, 2)
        self.assertFalse(other.alive)

    def test_runcount_is_one_with_only_the_main_tasklet(self):
        self.assertEqual(stackless.runcount, 1)
        self.assertEqual(stackless.getruncount(), 1)

    def test_threads_lists_the_main_thread_first(self):
        threads = stackless.threads
        self.assertEqual(threads[0], threading.main_thread().ident)

    def test_enable_softswitch_none_reports_soft_switching_off(self):
        self.assertIs(stackless.enable_softswitch(None), False)

    def test_enable_softswitch_accepts_a_flag_and_stays_off(self):
        self.assertIs(stackless.enable_softswitch(True), False)
        self.assertIs(stackless.enable_softswitch(None), False)
        self.assertIs(stackless.enable_softswitch(False), False)

    def test_taskletexit_is_a_systemexit_subclass(self):
        self.assertTrue(issubclass(stackless.TaskletExit, SystemExit))

    def test_taskletexit_is_a_builtin(self):
        self.assertIs(builtins.TaskletExit, stackless.TaskletExit)

    def test_get_thread_info_defaults_to_the_current_thread(self):
        main, current, runcount = stackless.get_thread_info()
        self.assertIs(main, stackless.getmain())
        self.assertIs(current, stackless.getcurrent())
        self.assertEqual(runcount, 1)

    def test_get_thread_info_counts_runnable_tasklets(self):
        t = stackless.tasklet(lambda: None)()
        self.assertEqual(stackless.get_thread_info(threading.get_ident())[2], 2)
        t.kill()


class KeywordArgumentsTest(StacklessTestCase):
    """Parameter names follow the Stackless documentation, keywords work."""

    def test_tasklet_constructor_takes_func_args_kwargs_keywords(self):
        log = []
        t = stackless.tasklet(func=record_call(log), args=(1,), kwargs={"b": 2})
        self.assertTrue(t.paused)
        t.insert()
        stackless.run()
        self.assertEqual(log, [((1,), {"b": 2})])

    def test_bind_takes_func_args_kwargs_keywords(self):
        log = []
        t = stackless.tasklet()
        t.bind(func=record_call(log), args=(1,), kwargs={"b": 2})
        t.insert()
        stackless.run()
        self.assertEqual(log, [((1,), {"b": 2})])

    def test_bind_with_func_none_keeps_the_bound_function(self):
        log = []
        t = stackless.tasklet(record_call(log))
        t.bind(None, (3,), {"c": 4})
        t.insert()
        stackless.run()
        self.assertEqual(log, [((3,), {"c": 4})])

    def test_setup_passes_args_and_kwargs_and_returns_the_tasklet(self):
        log = []
        t = stackless.tasklet(record_call(log))
        self.assertIs(t.setup(1, 2, name="x"), t)
        stackless.run()
        self.assertEqual(log, [((1, 2), {"name": "x"})])

    def test_kill_takes_pending_keyword(self):
        t = stackless.tasklet(stackless.schedule)()
        t.run()
        t.kill(pending=True)
        self.assertTrue(t.alive)
        stackless.run()
        self.assertFalse(t.alive)

    def test_throw_takes_exc_val_tb_pending_keywords(self):
        got = []

        def body():
            try:
                stackless.schedule_remove()
            except ValueError as e:
                got.append(e.args)

        t = stackless.tasklet(body)()
        t.run()
        t.throw(exc=ValueError, val=ValueError("kw"), tb=None, pending=True)
        stackless.run()
        self.assertEqual(got, [("kw",)])

    def test_set_atomic_takes_flag_keyword(self):
        current = stackless.getcurrent()
        old = current.set_atomic(flag=True)
        try:
            self.assertTrue(current.atomic)
        finally:
            current.set_atomic(flag=old)

    def test_set_ignore_nesting_takes_flag_keyword(self):
        current = stackless.getcurrent()
        old = current.set_ignore_nesting(flag=True)
        try:
            self.assertTrue(current.ignore_nesting)
        finally:
            current.set_ignore_nesting(flag=old)

    def test_bind_thread_takes_thread_id_keyword(self):
        t = stackless.tasklet(lambda: None, ())
        t.bind_thread(thread_id=threading.get_ident())
        self.assertEqual(t.thread_id, threading.get_ident())

    def test_bind_thread_minus_one_means_the_current_thread(self):
        t = stackless.tasklet(lambda: None, ())
        t.bind_thread(-1)
        self.assertEqual(t.thread_id, threading.get_ident())

    def test_run_takes_all_documented_keywords(self):
        stackless.tasklet(lambda: None)()
        result = stackless.run(timeout=0, threadblock=False, soft=False,
                               ignore_nesting=False, totaltimeout=0)
        self.assertIsNone(result)
        self.assertEqual(stackless.getruncount(), 1)

    def test_schedule_takes_retval_keyword(self):
        marker = object()
        self.assertIs(stackless.schedule(retval=marker), marker)

    def test_schedule_without_retval_returns_the_current_tasklet(self):
        self.assertIs(stackless.schedule(), stackless.getcurrent())

    def test_schedule_remove_takes_retval_keyword(self):
        got = []
        marker = object()

        def body():
            got.append(stackless.schedule_remove(retval=marker))

        t = stackless.tasklet(body)()
        t.run()
        t.insert()
        stackless.run()
        self.assertIs(got[0], marker)

    def test_channel_send_takes_value_keyword(self):
        c = stackless.channel()
        stackless.tasklet(lambda: c.send(value=7))()
        self.assertEqual(c.receive(), 7)

    def test_channel_send_throw_takes_exc_val_tb_keywords(self):
        c = stackless.channel()
        stackless.tasklet(lambda: c.send_throw(exc=KeyError, val=KeyError("k"), tb=None))()
        with self.assertRaises(KeyError) as cm:
            c.receive()
        self.assertEqual(cm.exception.args, ("k",))

    def test_get_thread_info_takes_thread_id_keyword(self):
        info = stackless.get_thread_info(thread_id=threading.get_ident())
        self.assertIs(info[0], stackless.getmain())

    def test_enable_softswitch_takes_flag_keyword(self):
        self.assertIs(stackless.enable_softswitch(flag=None), False)


class TypeErrorsTest(StacklessTestCase):
    """Wrong argument counts and types raise TypeError, like a builtin."""

    def assert_type_error(self, target, /, *args, **kwargs):
        with self.assertRaises(TypeError):
            target(*args, **kwargs)

    def test_tasklet_with_non_callable_func(self):
        self.assert_type_error(stackless.tasklet, 42)

    def test_tasklet_with_non_tuple_args(self):
        self.assert_type_error(stackless.tasklet, lambda: None, 5)

    def test_tasklet_with_non_dict_kwargs(self):
        self.assert_type_error(stackless.tasklet, lambda: None, (), 5)

    def test_tasklet_with_unknown_keyword(self):
        self.assert_type_error(stackless.tasklet, func=lambda: None, bogus=1)

    def test_tasklet_with_too_many_arguments(self):
        self.assert_type_error(stackless.tasklet, lambda: None, (), {}, 4)

    def test_bind_with_non_callable(self):
        self.assert_type_error(stackless.tasklet().bind, 42)

    def test_kill_with_too_many_arguments(self):
        t = stackless.tasklet(lambda: None, ())
        self.assert_type_error(t.kill, False, 1)

    def test_throw_without_arguments(self):
        t = stackless.tasklet(lambda: None, ())
        self.assert_type_error(t.throw)

    def test_throw_of_instance_with_separate_value(self):
        t = stackless.tasklet(lambda: None, ())
        self.assert_type_error(t.throw, IndexError(1), (1, 2, 3))

    def test_throw_of_non_exception(self):
        t = stackless.tasklet(lambda: None, ())
        self.assert_type_error(t.throw, 42)

    def test_raise_exception_without_arguments(self):
        t = stackless.tasklet(lambda: None, ())
        self.assert_type_error(t.raise_exception)

    def test_raise_exception_of_non_class(self):
        t = stackless.tasklet(lambda: None, ())
        self.assert_type_error(t.raise_exception, 42)

    def test_set_atomic_without_flag(self):
        self.assert_type_error(stackless.getcurrent().set_atomic)

    def test_set_ignore_nesting_without_flag(self):
        self.assert_type_error(stackless.getcurrent().set_ignore_nesting)

    def test_bind_thread_with_non_integer(self):
        t = stackless.tasklet(lambda: None, ())
        self.assert_type_error(t.bind_thread, "main")

    def test_run_with_non_numeric_timeout(self):
        self.assert_type_error(stackless.run, "soon")

    def test_run_with_unknown_keyword(self):
        self.assert_type_error(stackless.run, bogus=1)

    def test_schedule_with_two_arguments(self):
        self.assert_type_error(stackless.schedule, 1, 2)

    def test_schedule_remove_with_two_arguments(self):
        self.assert_type_error(stackless.schedule_remove, 1, 2)

    def test_send_without_value(self):
        self.assert_type_error(stackless.channel().send)

    def test_send_with_two_values(self):
        self.assert_type_error(stackless.channel().send, 1, 2)

    def test_receive_with_an_argument(self):
        self.assert_type_error(stackless.channel().receive, 1)

    def test_send_exception_without_exception(self):
        self.assert_type_error(stackless.channel().send_exception)

    def test_send_exception_of_non_exception(self):
        self.assert_type_error(stackless.channel().send_exception, 42)

    def test_send_throw_without_exception(self):
        self.assert_type_error(stackless.channel().send_throw)

    def test_send_sequence_of_non_iterable(self):
        self.assert_type_error(stackless.channel().send_sequence, 42)

    def test_get_thread_info_with_non_integer(self):
        self.assert_type_error(stackless.get_thread_info, "main")

    def test_enable_softswitch_without_flag(self):
        self.assert_type_error(stackless.enable_softswitch)

    def test_preference_set_to_non_integer(self):
        c = stackless.channel()
        with self.assertRaises(TypeError):
            c.preference = "sender"

    def test_tasklet_name_set_to_non_string(self):
        t = stackless.tasklet()
        with self.assertRaises(TypeError):
            t.name = 42


class StacklessWordingTest(StacklessTestCase):
    """Argument errors are worded as Stackless's own (its C sources, CPython's texts)."""

    def assert_message(self, error, text, target, /, *args, **kwargs):
        with self.assertRaises(error) as cm:
            target(*args, **kwargs)
        self.assertEqual(str(cm.exception), text)

    # ------------------------------------------------------------ tasklet

    def test_tasklet_constructor_is_bind(self):
        self.assert_message(TypeError, "bind() takes at most 3 arguments (4 given)",
                            stackless.tasklet, lambda: None, (), {}, 4)

    def test_tasklet_function_must_be_callable_or_none(self):
        self.assert_message(TypeError, "tasklet function must be a callable or None", stackless.tasklet, 42)

    def test_run_and_switch_take_no_arguments(self):
        t = stackless.tasklet(lambda: None, ())
        self.assert_message(TypeError, "tasklet.run() takes no arguments (1 given)", t.run, 1)
        self.assert_message(TypeError, "tasklet.switch() takes no keyword arguments", t.switch, now=True)

    def test_throw_requires_exc(self):
        t = stackless.tasklet(lambda: None, ())
        self.assert_message(TypeError, "throw() missing required argument 'exc' (pos 1)", t.throw)

    def test_throw_of_something_not_raisable(self):
        t = stackless.tasklet(lambda: None, ())
        self.assert_message(TypeError, "exceptions must be classes, or instances, not int", t.throw, 42)

    def test_throw_with_a_traceback_that_is_not_one(self):
        t = stackless.tasklet(lambda: None, ())
        self.assert_message(TypeError, "third argument must be a traceback object", t.throw, ValueError, None, 5)

    def test_raise_exception_wants_a_class_then_positional_arguments(self):
        t = stackless.tasklet(lambda: None, ())
        self.assert_message(TypeError, "raise_exception() takes at least 1 argument", t.raise_exception)
        self.assert_message(TypeError,
                            "tasklet.raise_exception needs Exception or string subclass as first parameter",
                            t.raise_exception, 42)
        self.assert_message(TypeError, "tasklet.raise_exception() takes no keyword arguments",
                            t.raise_exception, ValueError, code=1)

    def test_set_atomic_takes_exactly_one_integer(self):
        current = stackless.getcurrent()
        self.assert_message(TypeError, "tasklet.set_atomic() takes exactly one argument (0 given)", current.set_atomic)
        self.assert_message(TypeError, "set_atomic needs exactly one bool or integer", current.set_atomic, "yes")
        self.assertFalse(current.atomic)

    def test_set_ignore_nesting_takes_exactly_one_integer(self):
        current = stackless.getcurrent()
        self.assert_message(TypeError, "set_ignore_nesting needs exactly one bool or integer",
                            current.set_ignore_nesting, 1.0)
        self.assertFalse(current.ignore_nesting)

    def test_block_trap_must_be_set_to_an_integer(self):
        t = stackless.tasklet()
        with self.assertRaises(TypeError) as cm:
            t.block_trap = "yes"
        self.assertEqual(str(cm.exception), "block_trap must be set to a bool or integer")

    def test_bind_thread_takes_an_int(self):
        t = stackless.tasklet(lambda: None, ())
        self.assert_message(TypeError, "bind_thread() argument 1 must be int, not str", t.bind_thread, "main")
        self.assert_message(TypeError, "bind_thread() argument 1 must be int, not None", t.bind_thread, None)

    # ------------------------------------------------------------ channel

    def test_channel_takes_and_ignores_any_arguments(self):
        c = stackless.channel(1, 2, preference=1)
        self.assertEqual(c.preference, -1)

    def test_send_takes_exactly_one_argument(self):
        c = stackless.channel()
        self.assert_message(TypeError, "channel.send() takes exactly one argument (0 given)", c.send)
        self.assert_message(TypeError, "channel.send() takes exactly one argument (2 given)", c.send, 1, 2)

    def test_receive_takes_no_arguments(self):
        c = stackless.channel()
        self.assert_message(TypeError, "channel.receive() takes no arguments (1 given)", c.receive, 1)

    def test_send_sequence_takes_exactly_one_argument(self):
        c = stackless.channel()
        self.assert_message(TypeError, "channel.send_sequence() takes exactly one argument (0 given)",
                            c.send_sequence)

    def test_send_exception_wants_a_class_then_positional_arguments(self):
        c = stackless.channel()
        self.assert_message(TypeError, "send_exception() takes at least 1 argument", c.send_exception)
        self.assert_message(TypeError,
                            "channel.send_exception needs Exception or string subclass as first parameter",
                            c.send_exception, 42)
        self.assert_message(TypeError, "channel.send_exception() takes no keyword arguments",
                            c.send_exception, ValueError, code=1)

    def test_send_throw_takes_one_to_three_arguments(self):
        c = stackless.channel()
        self.assert_message(TypeError, "send_throw expected at least 1 argument, got 0", c.send_throw)
        self.assert_message(TypeError, "send_throw expected at most 3 arguments, got 4", c.send_throw, 1, 2, 3, 4)

    def test_preference_must_be_set_to_an_integer(self):
        c = stackless.channel()
        with self.assertRaises(TypeError) as cm:
            c.preference = "sender"
        self.assertEqual(str(cm.exception), "preference must be set to an integer")

    def test_schedule_all_must_be_set_to_a_bool_or_integer(self):
        c = stackless.channel()
        with self.assertRaisesRegex(TypeError, "must be set to a bool or integer"):
            c.schedule_all = 2.5
        self.assertEqual(c.schedule_all, 0)

    def test_schedule_all_reads_as_an_int(self):
        c = stackless.channel()
        c.schedule_all = True
        self.assertIs(type(c.schedule_all), int)
        self.assertEqual(c.schedule_all, 1)

    # ------------------------------------------------------------ module

    def test_run_is_parsed_as_run_watchdog(self):
        self.assert_message(TypeError, "'bogus' is an invalid keyword argument for run_watchdog()",
                            stackless.run, bogus=1)
        self.assert_message(TypeError, "'str' object cannot be interpreted as an integer", stackless.run, "soon")

    def test_run_with_a_negative_timeout_runs_without_one(self):
        log = []
        stackless.tasklet(log.append)(1)
        self.assertIsNone(stackless.run(-1))
        self.assertEqual(log, [1])

    def test_an_argument_given_by_name_and_position(self):
        self.assert_message(TypeError, "argument for schedule() given by name ('retval') and position (1)",
                            stackless.schedule, 1, retval=2)

    def test_get_thread_info_takes_an_int_thread_id_and_flags(self):
        self.assert_message(TypeError, "get_thread_info() argument 1 must be int, not str",
                            stackless.get_thread_info, "main")
        self.assert_message(TypeError, "get_thread_info() argument 1 must be int, not None",
                            stackless.get_thread_info, None)
        self.assert_message(TypeError, "get_thread_info() argument 2 must be int, not str",
                            stackless.get_thread_info, -1, "all")

    def test_get_thread_info_takes_thread_id_and_flags_keywords(self):
        info = stackless.get_thread_info(thread_id=threading.get_ident(), flags=0)
        self.assertEqual(info, (stackless.getmain(), stackless.getcurrent(), 1))

    def test_get_thread_info_minus_one_is_this_thread(self):
        self.assertIs(stackless.get_thread_info(-1)[0], stackless.getmain())

    def test_get_thread_info_of_an_unknown_thread(self):
        unknown = max(stackless.threads) + 1
        self.assert_message(RuntimeError, "Thread id not found", stackless.get_thread_info, unknown)
        self.assert_message(RuntimeError, "Thread id not found", stackless.get_thread_info, -5)
        self.assert_message(RuntimeError, "Thread id not found", stackless.get_thread_info, 2**70)

    def test_enable_softswitch_takes_exactly_one_argument(self):
        self.assert_message(TypeError, "stackless.enable_softswitch() takes exactly one argument (0 given)",
                            stackless.enable_softswitch)

    def test_enable_softswitch_with_a_flag_that_is_no_bool_raises(self):
        class NoBool:
            def __bool__(self):
                raise ZeroDivisionError("no truth")

        with self.assertRaises(ZeroDivisionError):
            stackless.enable_softswitch(NoBool())


class HardSwitchingOnlyTest(StacklessTestCase):
    """What a Stackless program asks about soft switching and pickling, answered honestly."""

    def test_enable_softswitch_saves_and_restores_as_in_the_stackless_docs(self):
        old_value = stackless.enable_softswitch(False)
        self.assertIs(old_value, False)
        self.assertIs(stackless.enable_softswitch(old_value), False)

    def test_pickle_flag_names(self):
        self.assertEqual((stackless.PICKLEFLAGS_PRESERVE_TRACING_STATE, stackless.PICKLEFLAGS_PRESERVE_AG_FINALIZER,
                          stackless.PICKLEFLAGS_RESET_AG_FINALIZER), (1, 2, 4))

    def test_pickle_flags_are_kept_and_the_old_value_returned(self):
        old = stackless.pickle_flags()
        try:
            self.assertEqual(stackless.pickle_flags(stackless.PICKLEFLAGS_PRESERVE_TRACING_STATE), old)
            self.assertEqual(stackless.pickle_flags(), 1)
            self.assertEqual(stackless.pickle_flags(new_flags=0, mask=1), 1)
            self.assertEqual(stackless.pickle_flags(), 0)
        finally:
            stackless.pickle_flags(old)

    def test_pickle_flags_refuse_undefined_bits(self):
        with self.assertRaises(ValueError) as cm:
            stackless.pickle_flags(8)
        self.assertEqual(str(cm.exception), "you must not set an undefined pickle-flag")

    def test_pickle_flags_default_is_kept_and_the_old_value_returned(self):
        old = stackless.pickle_flags_default()
        try:
            self.assertEqual(stackless.pickle_flags_default(new_default=2), old)
            self.assertEqual(stackless.pickle_flags_default(), 2)
            with self.assertRaises(ValueError):
                stackless.pickle_flags_default(-2)
        finally:
            stackless.pickle_flags_default(old)


if __name__ == "__main__":
    unittest.main()


class StacklessModuleNamesTest(StacklessTestCase):
    """The names of Stackless 3's Lib/stackless.py __all__ and its module attributes."""

    def test_star_import_exports_the_monitoring_and_introspection_functions(self):
        namespace = {}
        exec("from stackless import *", namespace)
        expected = {"getcurrentid", "getdebug", "getuncollectables", "getthreads",
                    "set_channel_callback", "get_channel_callback", "set_schedule_callback",
                    "get_schedule_callback", "set_error_handler", "switch_trap",
                    "pickle_with_tracing_state", "enable_softswitch"}
        self.assertEqual(expected - set(namespace), set())

    def test_getdebug_is_false_in_a_release_build_and_debug_agrees(self):
        self.assertIs(stackless.getdebug(), hasattr(__import__("sys"), "gettotalrefcount"))
        self.assertIs(stackless.debug, stackless.getdebug())

    def test_getthreads_lists_the_main_thread_first_like_threads(self):
        self.assertEqual(stackless.getthreads(), stackless.threads)
        self.assertEqual(stackless.getthreads()[0], threading.main_thread().ident)

    def test_pickle_with_tracing_state_reports_the_tracing_pickle_flag(self):
        old = stackless.pickle_flags(stackless.PICKLEFLAGS_PRESERVE_TRACING_STATE,
                                     stackless.PICKLEFLAGS_PRESERVE_TRACING_STATE)
        try:
            self.assertIs(stackless.pickle_with_tracing_state, True)
        finally:
            stackless.pickle_flags(old, -1)
        self.assertIs(stackless.pickle_with_tracing_state, bool(old & 1))

    def test_setting_pickle_with_tracing_state_sets_the_flag_here_and_in_the_default(self):
        # As Stackless's module property does (test_tstate.testUnpickledTracingState2).
        flags, default = stackless.pickle_flags(), stackless.pickle_flags_default()
        self.addCleanup(stackless.pickle_flags_default, default, -1)
        self.addCleanup(stackless.pickle_flags, flags, -1)
        stackless.pickle_with_tracing_state = True
        self.assertIs(stackless.pickle_with_tracing_state, True)
        self.assertEqual(stackless.pickle_flags() & stackless.PICKLEFLAGS_PRESERVE_TRACING_STATE, 1)
        self.assertEqual(stackless.pickle_flags_default() & stackless.PICKLEFLAGS_PRESERVE_TRACING_STATE, 1)
        stackless.pickle_with_tracing_state = 0
        self.assertIs(stackless.pickle_with_tracing_state, False)
        self.assertEqual(stackless.pickle_flags() & stackless.PICKLEFLAGS_PRESERVE_TRACING_STATE, 0)
        self.assertNotIn("pickle_with_tracing_state", vars(stackless))

    def test_the_module_is_still_a_module_with_settable_attributes(self):
        import types
        self.assertIsInstance(stackless, types.ModuleType)
        stackless._test_attribute = 1
        self.addCleanup(delattr, stackless, "_test_attribute")
        self.assertEqual(stackless._test_attribute, 1)


class GetCurrentIdTest(StacklessTestCase):

    def test_main_tasklet_id_is_the_thread_id(self):
        self.assertEqual(stackless.getcurrentid(), threading.get_ident())

    def test_another_tasklet_has_its_own_stable_id(self):
        ids = []

        def body():
            ids.append(stackless.getcurrentid())
            stackless.schedule()
            ids.append(stackless.getcurrentid())

        stackless.tasklet(body)()
        stackless.tasklet(body)()
        stackless.run()
        self.assertEqual(ids[0], ids[2])
        self.assertEqual(ids[1], ids[3])
        self.assertNotEqual(ids[0], ids[1])
        self.assertNotIn(threading.get_ident(), ids)

    def test_a_thread_without_tasklets_reports_its_thread_id(self):
        result = []
        t = threading.Thread(target=lambda: result.append((stackless.getcurrentid(), threading.get_ident())))
        t.start()
        t.join()
        self.assertEqual(result[0][0], result[0][1])


class GetUncollectablesTest(StacklessTestCase):

    def test_a_started_tasklet_is_listed_until_it_ends(self):
        def body():
            stackless.schedule_remove()

        t = stackless.tasklet(body)()
        self.assertNotIn(t, stackless.getuncollectables())  # no C stack before it runs
        t.run()
        self.assertIn(t, stackless.getuncollectables())
        self.assertIn(t, stackless.uncollectables)
        t.kill()
        self.assertNotIn(t, stackless.getuncollectables())


class SwitchTrapTest(StacklessTestCase):
    """Ported from Stackless's docs and scheduling.c: switches raise RuntimeError('switch_trap')."""

    def setUp(self):
        super().setUp()
        self.addCleanup(lambda: stackless.switch_trap(-stackless.switch_trap()))

    def test_switch_trap_returns_the_old_level(self):
        self.assertEqual(stackless.switch_trap(), 0)
        self.assertEqual(stackless.switch_trap(1), 0)
        self.assertEqual(stackless.switch_trap(1), 1)
        self.assertEqual(stackless.switch_trap(-2), 2)
        self.assertEqual(stackless.switch_trap(0), 0)

    def test_switch_trap_takes_an_int(self):
        self.assertRaises(TypeError, stackless.switch_trap, "1")
        self.assertRaises(TypeError, stackless.switch_trap, 1, 2)

    def test_schedule_under_the_trap_raises_and_keeps_the_tasklet_running(self):
        ran = []
        t = stackless.tasklet(ran.append)(1)
        stackless.switch_trap(1)
        try:
            with self.assertRaisesRegex(RuntimeError, "^switch_trap$"):
                stackless.schedule()
            with self.assertRaisesRegex(RuntimeError, "^switch_trap$"):
                stackless.schedule_remove()
            with self.assertRaisesRegex(RuntimeError, "^switch_trap$"):
                t.run()
            self.assertEqual(ran, [])
            self.assertIs(stackless.current, stackless.main)
            self.assertTrue(stackless.main.scheduled)
        finally:
            stackless.switch_trap(-1)
        self.assertEqual(stackless.getruncount(), 2)
        stackless.run()
        self.assertEqual(ran, [1])

    def test_schedule_with_nothing_else_to_run_is_no_switch(self):
        stackless.switch_trap(1)
        try:
            self.assertEqual(stackless.schedule(5), 5)
        finally:
            stackless.switch_trap(-1)

    def test_blocking_on_a_channel_under_the_trap_leaves_the_channel_as_it_was(self):
        ch = stackless.channel()
        stackless.tasklet(lambda: None)()
        stackless.switch_trap(1)
        try:
            with self.assertRaisesRegex(RuntimeError, "^switch_trap$"):
                ch.send(1)
        finally:
            stackless.switch_trap(-1)
        self.assertEqual(ch.balance, 0)
        self.assertFalse(stackless.main.blocked)
        stackless.run()

    def test_run_under_the_trap_raises(self):
        ran = []
        stackless.tasklet(ran.append)(1)
        stackless.switch_trap(1)
        try:
            with self.assertRaisesRegex(RuntimeError, "^switch_trap$"):
                stackless.run()
        finally:
            stackless.switch_trap(-1)
        self.assertTrue(stackless.main.scheduled)
        stackless.run()
        self.assertEqual(ran, [1])


class SwitchTrapPreemptionTest(StacklessTestCase):

    def test_run_with_a_timeout_does_not_interrupt_a_trapped_tasklet(self):
        from support import busy_for
        log = []

        def body():
            stackless.switch_trap(1)
            try:
                busy_for(0.05)  # far over the 1 ms slice
                log.append("trapped part done")
            finally:
                stackless.switch_trap(-1)

        t = stackless.tasklet(body)()
        interrupted = stackless.run(1000)
        if interrupted is not None:
            interrupted.kill()
        self.assertEqual(log, ["trapped part done"])


class SchedulingMonitor:
    "A scheduling monitor acting as a callback for set_schedule_callback() (from Stackless's test_sched_cb)."

    def __init__(self):
        self.calls = []

    def __call__(self, prev, next):
        self.calls.append((prev, next, stackless.getcurrent()))


class ScheduleCallbackTest(StacklessTestCase):
    """Ported from Stackless's test_sched_cb.py."""

    def setUp(self):
        super().setUp()
        self.addCleanup(stackless.set_schedule_callback, None)

    def test_get_and_set_return_the_previous_callback(self):
        mon = SchedulingMonitor()
        self.assertIsNone(stackless.get_schedule_callback())
        self.assertIsNone(stackless.set_schedule_callback(mon))
        self.assertIs(stackless.get_schedule_callback(), mon)
        self.assertIs(stackless.set_schedule_callback(None), mon)
        self.assertIsNone(stackless.get_schedule_callback())

    def test_a_callback_must_be_callable(self):
        with self.assertRaisesRegex(TypeError, "^schedule callback must be callable$"):
            stackless.set_schedule_callback(1)
        self.assertRaises(TypeError, stackless.set_schedule_callback)

    def test_every_switch_calls_it_with_prev_and_next_on_prev(self):
        mon = SchedulingMonitor()

        def body():
            stackless.schedule()

        t1 = stackless.tasklet(body)()
        t2 = stackless.tasklet(body)()
        main = stackless.main
        stackless.set_schedule_callback(mon)
        self.assertEqual(mon.calls, [])  # no callbacks before running
        stackless.run()
        stackless.set_schedule_callback(None)
        pairs = [(prev, next) for prev, next, _ in mon.calls]
        self.assertEqual(pairs, [(main, t1), (t1, t2), (t2, t1), (t1, t2), (t2, main)])
        # Called before the switch: the current tasklet is still prev.
        self.assertTrue(all(current is prev for prev, _, current in mon.calls))

    def test_no_calls_after_it_is_removed(self):
        mon = SchedulingMonitor()
        stackless.set_schedule_callback(mon)
        stackless.set_schedule_callback(None)
        stackless.tasklet(stackless.schedule)()
        stackless.run()
        self.assertEqual(mon.calls, [])

    def test_a_new_threads_main_tasklet_is_announced_with_prev_none(self):
        mon = SchedulingMonitor()
        stackless.set_schedule_callback(mon)
        seen = []

        def thread_body():
            seen.append(stackless.getmain())

        t = threading.Thread(target=thread_body)
        t.start()
        t.join()
        stackless.set_schedule_callback(None)
        self.assertIn((None, seen[0]), [(prev, next) for prev, next, _ in mon.calls])

    def test_an_error_in_the_callback_is_unraisable_and_the_switch_happens(self):
        import sys
        reports = []

        def failing(prev, next):
            raise ZeroDivisionError("in callback")

        old_hook = sys.unraisablehook
        sys.unraisablehook = reports.append
        try:
            ran = []
            stackless.tasklet(ran.append)(1)
            stackless.set_schedule_callback(failing)
            stackless.run()
        finally:
            stackless.set_schedule_callback(None)
            sys.unraisablehook = old_hook
        self.assertEqual(ran, [1])
        self.assertEqual(len(reports), 2)  # main -> t, t -> main
        self.assertIsInstance(reports[0].exc_value, ZeroDivisionError)
        self.assertEqual(reports[0].object, "Error in scheduling callback")

    def test_the_callback_keeps_the_pending_exception_of_the_switch(self):
        def cb(prev, next):
            pass

        def body():
            raise KeyError("from tasklet")

        stackless.tasklet(body)()
        stackless.set_schedule_callback(cb)
        with self.assertRaises(KeyError):
            stackless.run()

    def test_switching_inside_the_callback_is_refused(self):
        errors = []

        def cb(prev, next):
            try:
                stackless.schedule()
            except RuntimeError as e:
                errors.append(str(e))

        stackless.tasklet(stackless.schedule)()
        stackless.set_schedule_callback(cb)
        stackless.run()
        stackless.set_schedule_callback(None)
        self.assertTrue(errors)
        self.assertEqual(set(errors), {"switch_trap"})
        self.assertEqual(stackless.switch_trap(), 0)


class ErrorHandlerTest(StacklessTestCase):
    """Ported from Stackless's test_miscell.TestErrorHandler."""

    def setUp(self):
        super().setUp()
        self.handled = self.ran = 0
        self.handled_tasklet = None
        self.addCleanup(stackless.set_error_handler, None)

    def handler(self, exc, val, tb):
        self.assertIs(exc, type(val))
        self.handled = 1
        self.handled_tasklet = stackless.getcurrent()

    def borken_handler(self, exc, val, tb):
        self.handled = 1
        raise IndexError("we are the mods")

    def func(self, handler):
        self.ran = 1
        self.assertIs(stackless.set_error_handler(handler), handler)
        raise ZeroDivisionError("I am borken")

    def test_set_returns_the_previous_handler(self):
        def foo():
            pass
        self.assertIsNone(stackless.set_error_handler(foo))
        self.assertIs(stackless.set_error_handler(None), foo)
        self.assertIsNone(stackless.set_error_handler(None))
        stackless.set_error_handler(foo)
        self.assertIs(stackless.set_error_handler(), foo)  # no argument removes it too
        self.assertIsNone(stackless.set_error_handler())

    def test_handler_gets_the_uncaught_error_and_run_returns(self):
        stackless.tasklet(self.func)(self.handler)
        stackless.set_error_handler(self.handler)
        stackless.run()
        self.assertTrue(self.ran)
        self.assertTrue(self.handled)

    def test_an_error_of_the_handler_goes_to_main(self):
        stackless.tasklet(self.func)(self.borken_handler)
        stackless.set_error_handler(self.borken_handler)
        self.assertRaisesRegex(IndexError, "mods", stackless.run)
        self.assertTrue(self.ran)
        self.assertTrue(self.handled)

    def test_an_error_thrown_before_the_tasklet_runs_is_handled(self):
        s = stackless.tasklet(self.func)(self.handler)
        stackless.set_error_handler(self.handler)
        s.throw(ZeroDivisionError, "thrown error")
        self.assertFalse(self.ran)
        self.assertTrue(self.handled)

    def test_the_handler_runs_in_the_dying_tasklet(self):
        s = stackless.tasklet(self.func)(self.handler)
        stackless.set_error_handler(self.handler)
        s.run()
        self.assertIs(self.handled_tasklet, s)

    def test_tasklet_exit_is_not_an_error(self):
        s = stackless.tasklet(self.func)(self.handler)
        stackless.set_error_handler(self.handler)
        s.kill()
        self.assertFalse(self.handled)
