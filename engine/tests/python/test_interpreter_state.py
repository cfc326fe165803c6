"""Interpreter state that must travel with a tasklet across switches.

Generators and `with` blocks suspended inside a tasklet, the handled
exception (sys.exc_info()), contextvars, the trace function, and garbage
collection of a tasklet that only a reference cycle keeps alive.
"""

import contextvars
import gc
import sys
import traceback
import unittest
import weakref

import stackless
from support import StacklessTestCase, busy_for
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)

TaskletExit = stackless.TaskletExit


class GeneratorTest(StacklessTestCase):

    def test_tasklet_blocks_inside_a_generator_body(self):
        c = stackless.channel()
        out = []

        def doubled():
            while True:
                value = c.receive()
                if value is None:
                    return
                yield value * 2

        t = stackless.tasklet(lambda: out.extend(doubled()))()
        t.run()
        self.assertTrue(t.blocked)
        for value in (1, 2, None):
            c.send(value)
        stackless.run()
        self.assertEqual(out, [2, 4])
        self.assertFalse(t.alive)

    def test_frame_of_tasklet_blocked_in_generator_is_the_generator_frame(self):
        c = stackless.channel()

        def gen():
            yield c.receive()

        t = stackless.tasklet(lambda: list(gen()))()
        t.run()
        self.assertIs(t.frame.f_code, gen.__code__)
        c.send(1)

    def test_kill_of_tasklet_blocked_in_generator_runs_generator_finally(self):
        c = stackless.channel()
        log = []

        def gen():
            try:
                yield c.receive()
            finally:
                log.append("generator finally")

        t = stackless.tasklet(lambda: list(gen()))()
        t.run()
        t.kill()
        self.assertEqual(log, ["generator finally"])
        self.assertFalse(t.alive)

    def test_two_tasklets_each_suspended_in_their_own_generator(self):
        c = stackless.channel()
        out = []

        def gen(tag):
            for _ in range(2):
                yield (tag, c.receive())

        stackless.tasklet(lambda: out.extend(gen("a")))()
        stackless.tasklet(lambda: out.extend(gen("b")))()
        stackless.run()
        for i in range(4):
            c.send(i)
        stackless.run()
        self.assertEqual(sorted(out), [("a", 0), ("a", 2), ("b", 1), ("b", 3)])


class WithBlockTest(StacklessTestCase):

    def make_manager(self, log):
        class Manager:
            def __enter__(self):
                log.append("enter")

            def __exit__(self, exc_type, exc, tb):
                log.append(("exit", exc_type))
                return False

        return Manager()

    def test_exit_runs_when_a_blocked_with_body_resumes(self):
        c, log = stackless.channel(), []

        def body():
            with self.make_manager(log):
                c.receive()

        stackless.tasklet(body)().run()
        c.send(None)
        self.assertEqual(log, ["enter", ("exit", None)])

    def test_exit_runs_with_taskletexit_when_a_blocked_with_body_is_killed(self):
        c, log = stackless.channel(), []

        def body():
            with self.make_manager(log):
                c.receive()

        t = stackless.tasklet(body)()
        t.run()
        t.kill()
        self.assertEqual(log, ["enter", ("exit", TaskletExit)])

    def test_exit_sees_exception_raised_into_a_blocked_with_body(self):
        c, log = stackless.channel(), []

        def body():
            try:
                with self.make_manager(log):
                    c.receive()
            except KeyError:
                pass

        stackless.tasklet(body)().run()
        c.send_exception(KeyError)
        self.assertEqual(log, ["enter", ("exit", KeyError)])


class ExceptionStateTest(StacklessTestCase):

    def test_each_tasklet_keeps_its_handled_exception_across_switches(self):
        log = []

        def body(exc_type):
            try:
                raise exc_type("x")
            except exc_type:
                stackless.schedule()
                log.append((exc_type, sys.exc_info()[0]))

        stackless.tasklet(body)(ValueError)
        stackless.tasklet(body)(KeyError)
        stackless.run()
        self.assertEqual(log, [(ValueError, ValueError), (KeyError, KeyError)])

    def test_a_tasklet_switching_from_an_except_block_leaves_no_exception_to_the_other(self):
        c = stackless.channel()
        c.preference = 1  # the sender goes on; every switch below is a channel's
        seen = {}

        def handler():
            try:
                raise ValueError("handled")
            except ValueError:
                c.receive()  # switches to main inside the except block
                seen["handler after resume"] = sys.exc_info()[0]

        t = stackless.tasklet(handler)()
        t.run()
        self.assertTrue(t.blocked)
        seen["main while handler waits"] = sys.exc_info()
        try:
            raise KeyError("main's own")
        except KeyError:
            c.send(None)  # preference 1: main goes on, handler runs later
            seen["main in its own except"] = sys.exc_info()[0]
            stackless.run()
            seen["main after handler ran"] = sys.exc_info()[0]
        self.assertEqual(seen, {
            "main while handler waits": (None, None, None),
            "main in its own except": KeyError,
            "handler after resume": ValueError,
            "main after handler ran": KeyError,
        })

    def test_bare_raise_after_a_switch_reraises_the_tasklets_exception(self):
        log = []

        def body(exc_type):
            try:
                try:
                    raise exc_type
                except exc_type:
                    stackless.schedule()
                    raise
            except Exception as e:
                log.append(type(e))

        stackless.tasklet(body)(ValueError)
        stackless.tasklet(body)(KeyError)
        stackless.run()
        self.assertEqual(log, [ValueError, KeyError])

    def test_main_keeps_its_handled_exception_across_run(self):
        def other():
            try:
                raise KeyError
            except KeyError:
                stackless.schedule()

        try:
            raise IndexError
        except IndexError:
            stackless.tasklet(other)()
            stackless.run()
            self.assertIs(sys.exc_info()[0], IndexError)

    def test_new_tasklet_starts_without_a_handled_exception(self):
        seen = []
        try:
            raise IndexError
        except IndexError:
            stackless.tasklet(lambda: seen.append(sys.exc_info()))()
            stackless.run()
        self.assertEqual(seen, [(None, None, None)])

    def test_exception_state_is_cleared_after_the_except_block_in_a_tasklet(self):
        seen = []

        def body():
            try:
                raise ValueError
            except ValueError:
                stackless.schedule()
            seen.append(sys.exc_info())

        stackless.tasklet(body)()
        stackless.tasklet(stackless.schedule)()
        stackless.run()
        self.assertEqual(seen, [(None, None, None)])


VAR = contextvars.ContextVar("test_var", default="unset")


class ContextVarTest(StacklessTestCase):

    def test_each_tasklet_keeps_its_context_value_across_switches(self):
        log = []

        def body(value):
            def inner():
                VAR.set(value)
                stackless.schedule()
                log.append((value, VAR.get()))
            contextvars.copy_context().run(inner)

        stackless.tasklet(body)("a")
        stackless.tasklet(body)("b")
        stackless.run()
        self.assertEqual(log, [("a", "a"), ("b", "b")])

    def test_main_context_value_survives_tasklets_switching_contexts(self):
        token = VAR.set("main")
        try:
            def body():
                contextvars.copy_context().run(lambda: (VAR.set("tasklet"),
                                                        stackless.schedule()))

            stackless.tasklet(body)()
            stackless.tasklet(stackless.schedule)()
            stackless.run()
            self.assertEqual(VAR.get(), "main")
        finally:
            VAR.reset(token)

    def test_context_run_survives_a_blocking_receive(self):
        c = stackless.channel()
        log = []

        def body():
            def inner():
                VAR.set("inside")
                log.append(c.receive())
                log.append(VAR.get())
            contextvars.copy_context().run(inner)

        stackless.tasklet(body)().run()
        self.assertEqual(VAR.get(), "unset")
        c.send("value")
        self.assertEqual(log, ["value", "inside"])


def traced_target():
    return 1


class TraceTest(StacklessTestCase):

    def trace_calls_in_tasklet(self, switch_before_call):
        events = []

        def tracer(frame, event, arg):
            if frame.f_code is traced_target.__code__:
                events.append(event)
            return None

        def body():
            sys.settrace(tracer)
            try:
                if switch_before_call:
                    stackless.schedule()
                traced_target()
            finally:
                sys.settrace(None)

        stackless.tasklet(body)()
        stackless.tasklet(lambda: None)()
        stackless.run()
        return events

    def test_settrace_in_tasklet_sees_call_events(self):
        self.assertIn("call", self.trace_calls_in_tasklet(switch_before_call=False))

    def test_settrace_in_tasklet_survives_a_switch(self):
        self.assertIn("call", self.trace_calls_in_tasklet(switch_before_call=True))

    def test_settrace_in_main_sees_calls_made_by_main_after_run(self):
        events = []

        def tracer(frame, event, arg):
            if frame.f_code is traced_target.__code__:
                events.append(event)

        sys.settrace(tracer)
        try:
            stackless.tasklet(stackless.schedule)()
            stackless.run()
            traced_target()
        finally:
            sys.settrace(None)
        self.assertIn("call", events)


class Marker:
    pass


class GarbageCollectionTest(StacklessTestCase):

    def setUp(self):
        super().setUp()
        gc.collect()
        self.garbage_before = len(gc.garbage)

    def start_self_referencing_blocked_tasklet(self, log):
        """A tasklet blocked on a channel that only its own frame references."""
        refs = []

        def body():
            channel = stackless.channel()
            marker = Marker()
            refs.append(weakref.ref(marker))
            try:
                channel.receive()
            finally:
                log.append("finally")

        t = stackless.tasklet(body)()
        t.run()
        self.assertTrue(t.blocked)
        return refs[0]

    def test_cycle_through_blocked_tasklet_is_collected(self):
        marker_ref = self.start_self_referencing_blocked_tasklet([])
        gc.collect()
        gc.collect()
        self.assertIsNone(marker_ref())

    def test_collecting_blocked_tasklet_runs_its_finally_block(self):
        log = []
        self.start_self_referencing_blocked_tasklet(log)
        gc.collect()
        gc.collect()
        self.assertEqual(log, ["finally"])

    def test_collecting_blocked_tasklet_leaves_gc_garbage_empty(self):
        self.start_self_referencing_blocked_tasklet([])
        gc.collect()
        gc.collect()
        self.assertEqual(len(gc.garbage), self.garbage_before)

    def test_blocked_tasklet_reachable_from_outside_is_not_collected(self):
        c = stackless.channel()
        refs, log = [], []

        def body():
            marker = Marker()
            refs.append(weakref.ref(marker))
            log.append(c.receive())

        stackless.tasklet(body)().run()
        gc.collect()
        self.assertIsNotNone(refs[0]())
        c.send("still there")
        self.assertEqual(log, ["still there"])

    def test_finished_tasklet_releases_its_locals(self):
        refs = []

        def body():
            marker = Marker()
            refs.append(weakref.ref(marker))

        t = stackless.tasklet(body)()
        stackless.run()
        self.assertIsNone(refs[0]())
        self.assertFalse(t.alive)


class FinalizerStack:
    """A reference cycle whose finalizer records the call chain it runs in."""

    def __init__(self, stacks):
        self.stacks = stacks
        self.cycle = self

    def __del__(self):
        self.stacks.append([f.name for f in traceback.extract_stack()])


class NoPythonInsideSwitchTest(StacklessTestCase):
    """Finalizers never run while the thread state is half handed over."""

    def test_finalizer_run_while_reading_a_suspended_frame_sees_only_the_callers_stack(self):
        c = stackless.channel()

        def sleeper_inner():
            c.receive()

        def sleeper():
            sleeper_inner()

        t = stackless.tasklet(sleeper)()
        t.run()
        stacks = []
        threshold = gc.get_threshold()
        gc.collect()
        gc.disable()
        try:
            FinalizerStack(stacks)  # garbage at once, collected at the next GC allocation:
            gc.set_threshold(1)
            gc.enable()
            frame = t.frame         # the frame object of the suspended tasklet
        finally:
            gc.set_threshold(*threshold)
        gc.collect()
        self.assertEqual(frame.f_code.co_name, "sleeper_inner")
        self.assertEqual(len(stacks), 1)
        self.assertNotIn("sleeper_inner", stacks[0])
        self.assertNotIn("sleeper", stacks[0])
        c.send(None)

    def test_finalizer_run_as_a_switch_completes_leaves_the_received_value_alone(self):
        # The sender finishes right after the hand-over: its last reference
        # dies in the switch back to the receiver, whose value is on its way.
        c = stackless.channel()
        c.preference = 1
        switched = []

        def sender():
            c.send("payload")

        t = stackless.tasklet(sender)()
        ref = weakref.ref(t, lambda r: switched.append(stackless.schedule()))
        del t
        got = c.receive()
        self.assertEqual(switched, [stackless.getcurrent()])
        self.assertIsNone(ref())
        self.assertEqual(got, "payload")

    def test_finalizer_run_as_a_new_tasklet_starts_sees_that_tasklets_context(self):
        var = contextvars.ContextVar("var", default="unset")
        seen = []
        token = var.set("creator")
        try:
            first = stackless.tasklet(lambda: None)()
            ref = weakref.ref(first, lambda r: seen.append((stackless.getcurrent(), var.get())))
            del first
            second = stackless.tasklet(lambda: None)()
        finally:
            var.reset(token)
        stackless.run()
        self.assertIsNone(ref())
        self.assertEqual(seen, [(second, "creator")])

    def test_finalizer_run_as_a_timed_run_drops_its_longest_slice_runs_after_the_switch(self):
        # x_body has the longest slice until z_body's longer one displaces it
        # as z_body switches to w; that drops x's last reference.
        seen = []

        def x_body():
            busy_for(0.02)

        def z_body():
            busy_for(0.12)
            stackless.schedule()

        x = stackless.tasklet(x_body)()
        ref = weakref.ref(x, lambda r: seen.append(
            (stackless.getcurrent(), [f.name for f in traceback.extract_stack()])))
        del x
        stackless.tasklet(z_body)()
        w = stackless.tasklet(lambda: None)()
        stackless.run(totaltimeout=10000000)
        self.assertIsNone(ref())
        self.assertEqual(len(seen), 1)
        current, stack = seen[0]
        self.assertIs(current, w)
        self.assertNotIn("z_body", stack)


if __name__ == "__main__":
    unittest.main()
