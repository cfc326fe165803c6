"""channel: send/receive, preference, schedule_all, exceptions, iteration, close."""

import sys
import traceback
import unittest

import stackless
from support import StacklessTestCase
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)


class SendReceiveTest(StacklessTestCase):

    def test_send_without_receiver_blocks_the_sender(self):
        c = stackless.channel()
        t = stackless.tasklet(c.send)(1)
        t.run()
        self.assertTrue(t.blocked)
        self.assertEqual(c.balance, 1)
        self.assertIs(c.queue, t)
        c.receive()

    def test_receive_without_sender_blocks_the_receiver(self):
        c = stackless.channel()
        t = stackless.tasklet(c.receive)()
        t.run()
        self.assertTrue(t.blocked)
        self.assertEqual(c.balance, -1)
        self.assertIs(c.queue, t)
        c.send(None)

    def test_value_travels_from_sender_to_receiver(self):
        c = stackless.channel()
        payload = object()
        stackless.tasklet(c.send)(payload)
        self.assertIs(c.receive(), payload)

    def test_receive_from_waiting_sender_does_not_block(self):
        c = stackless.channel()
        t = stackless.tasklet(c.send)("v")
        t.run()
        current = stackless.getcurrent()
        current.block_trap = True
        try:
            self.assertEqual(c.receive(), "v")
        finally:
            current.block_trap = False
        self.assertEqual(c.balance, 0)

    def test_send_to_waiting_receiver_does_not_block(self):
        c = stackless.channel()
        got = []
        t = stackless.tasklet(lambda: got.append(c.receive()))()
        t.run()
        current = stackless.getcurrent()
        current.block_trap = True
        try:
            c.send("v")
        finally:
            current.block_trap = False
        stackless.run()
        self.assertEqual(got, ["v"])

    def test_balance_counts_waiting_senders(self):
        c = stackless.channel()
        for i in range(3):
            stackless.tasklet(c.send)(i)
        stackless.run()
        self.assertEqual(c.balance, 3)
        self.assertEqual([c.receive() for _ in range(3)], [0, 1, 2])
        self.assertEqual(c.balance, 0)

    def test_balance_counts_waiting_receivers(self):
        c = stackless.channel()
        got = []
        for _ in range(3):
            stackless.tasklet(lambda: got.append(c.receive()))()
        stackless.run()
        self.assertEqual(c.balance, -3)
        for i in range(3):
            c.send(i)
        stackless.run()
        self.assertEqual(got, [0, 1, 2])
        self.assertEqual(c.balance, 0)

    def test_queue_lists_blocked_tasklets_in_fifo_order(self):
        c = stackless.channel()
        t1 = stackless.tasklet(c.receive)()
        t2 = stackless.tasklet(c.receive)()
        stackless.run()
        self.assertIs(c.queue, t1)
        self.assertIs(c.queue.next, t2)
        c.send(None)
        self.assertIs(c.queue, t2)
        c.send(None)
        self.assertIsNone(c.queue)

    def test_queue_is_none_on_empty_channel(self):
        self.assertIsNone(stackless.channel().queue)

    def test_channel_is_subclassable(self):
        class NamedChannel(stackless.channel):
            def __init__(self, name):
                super().__init__()
                self.name = name

        c = NamedChannel("x")
        stackless.tasklet(c.send)(1)
        self.assertEqual((c.name, c.receive()), ("x", 1))

    def test_main_receiving_when_the_only_other_tasklet_ends_raises_runtime_error(self):
        c = stackless.channel()
        stackless.tasklet(lambda: None)()
        with self.assertRaises(RuntimeError):
            c.receive()
        self.assertEqual(c.balance, 0)

    def test_main_sending_when_the_only_other_tasklet_ends_raises_runtime_error(self):
        c = stackless.channel()
        stackless.tasklet(lambda: None)()
        with self.assertRaises(RuntimeError):
            c.send(1)
        self.assertEqual(c.balance, 0)


class PreferenceTest(StacklessTestCase):
    """Exact order of events for preference -1, 0 and 1.

    Every scenario has a bystander tasklet `b` in the runnable queue, so that
    "made runnable" (goes to the end of the queue, after b) and "runs now"
    (before b) can be told apart.
    """

    def make_channel(self, preference):
        c = stackless.channel()
        c.preference = preference
        return c

    def receiver_waits_then_main_sends(self, preference):
        c = self.make_channel(preference)
        log = []

        def receiver():
            log.append("r-start")
            log.append(("r-got", c.receive()))

        t = stackless.tasklet(receiver)()
        t.run()  # blocks in receive()
        stackless.tasklet(log.append)("b")
        c.send(1)
        log.append("s-after-send")
        stackless.run()
        return log

    def sender_waits_then_main_receives(self, preference):
        c = self.make_channel(preference)
        log = []

        def sender():
            log.append("s-start")
            c.send(1)
            log.append("s-after-send")

        t = stackless.tasklet(sender)()
        t.run()  # blocks in send()
        stackless.tasklet(log.append)("b")
        log.append(("r-got", c.receive()))
        stackless.run()
        return log

    def test_default_preference_is_minus_one(self):
        self.assertEqual(stackless.channel().preference, -1)

    def test_preference_is_settable(self):
        c = stackless.channel()
        for value in (1, 0, -1):
            c.preference = value
            self.assertEqual(c.preference, value)

    def test_preference_minus1_send_to_waiting_receiver_runs_receiver_first(self):
        self.assertEqual(self.receiver_waits_then_main_sends(-1),
                         ["r-start", ("r-got", 1), "b", "s-after-send"])

    def test_preference_minus1_receive_from_waiting_sender_keeps_receiver_running(self):
        self.assertEqual(self.sender_waits_then_main_receives(-1),
                         ["s-start", ("r-got", 1), "b", "s-after-send"])

    def test_preference_0_send_to_waiting_receiver_only_makes_it_runnable(self):
        self.assertEqual(self.receiver_waits_then_main_sends(0),
                         ["r-start", "s-after-send", "b", ("r-got", 1)])

    def test_preference_0_receive_from_waiting_sender_only_makes_it_runnable(self):
        self.assertEqual(self.sender_waits_then_main_receives(0),
                         ["s-start", ("r-got", 1), "b", "s-after-send"])

    def test_preference_1_send_to_waiting_receiver_keeps_sender_running(self):
        self.assertEqual(self.receiver_waits_then_main_sends(1),
                         ["r-start", "s-after-send", "b", ("r-got", 1)])

    def test_preference_1_receive_from_waiting_sender_runs_sender_first(self):
        self.assertEqual(self.sender_waits_then_main_receives(1),
                         ["s-start", "s-after-send", "b", ("r-got", 1)])

    def test_partner_made_runnable_is_not_blocked_any_more(self):
        c = self.make_channel(0)
        t = stackless.tasklet(c.receive)()
        t.run()
        c.send(1)
        self.assertFalse(t.blocked)
        self.assertTrue(t.scheduled)
        self.assertEqual(c.balance, 0)
        stackless.run()

    def check_sender_without_partner_blocks(self, preference):
        c = self.make_channel(preference)
        log = []

        def sender():
            log.append("send")
            c.send(1)
            log.append("sent")

        t = stackless.tasklet(sender)()
        stackless.tasklet(log.append)("b")
        stackless.run()
        self.assertEqual(log, ["send", "b"])
        self.assertTrue(t.blocked)
        self.assertEqual(c.balance, 1)
        c.receive()
        stackless.run()

    def check_receiver_without_partner_blocks(self, preference):
        c = self.make_channel(preference)
        log = []

        def receiver():
            log.append("receive")
            c.receive()
            log.append("received")

        t = stackless.tasklet(receiver)()
        stackless.tasklet(log.append)("b")
        stackless.run()
        self.assertEqual(log, ["receive", "b"])
        self.assertTrue(t.blocked)
        self.assertEqual(c.balance, -1)
        c.send(1)
        stackless.run()

    def test_preference_minus1_sender_without_receiver_blocks(self):
        self.check_sender_without_partner_blocks(-1)

    def test_preference_0_sender_without_receiver_blocks(self):
        self.check_sender_without_partner_blocks(0)

    def test_preference_1_sender_without_receiver_blocks(self):
        self.check_sender_without_partner_blocks(1)

    def test_preference_minus1_receiver_without_sender_blocks(self):
        self.check_receiver_without_partner_blocks(-1)

    def test_preference_0_receiver_without_sender_blocks(self):
        self.check_receiver_without_partner_blocks(0)

    def test_preference_1_receiver_without_sender_blocks(self):
        self.check_receiver_without_partner_blocks(1)

    def test_preference_1_lets_one_sender_wake_all_receivers_without_blocking(self):
        # The "pumping the scheduler" idiom of the Stackless docs.
        c = self.make_channel(1)
        got = []
        for _ in range(3):
            stackless.tasklet(lambda: got.append(c.receive()))()
        stackless.run()
        current = stackless.getcurrent()
        current.block_trap = True
        try:
            while c.balance < 0:
                c.send("wake")
        finally:
            current.block_trap = False
        self.assertEqual(got, [])
        stackless.run()
        self.assertEqual(got, ["wake"] * 3)

    def test_preference_minus1_between_two_tasklets(self):
        c = self.make_channel(-1)
        log = []

        def receiver():
            log.append(("got", c.receive()))

        def sender():
            c.send("x")
            log.append("sender-continues")

        stackless.tasklet(receiver)()
        stackless.tasklet(sender)()
        stackless.run()
        self.assertEqual(log, [("got", "x"), "sender-continues"])

    def test_preference_1_between_two_tasklets(self):
        c = self.make_channel(1)
        log = []

        def receiver():
            log.append(("got", c.receive()))

        def sender():
            c.send("x")
            log.append("sender-continues")

        stackless.tasklet(receiver)()
        stackless.tasklet(sender)()
        stackless.run()
        self.assertEqual(log, ["sender-continues", ("got", "x")])


class ScheduleAllTest(StacklessTestCase):

    def test_schedule_all_defaults_to_false(self):
        self.assertFalse(stackless.channel().schedule_all)

    def test_schedule_all_is_settable(self):
        c = stackless.channel()
        c.schedule_all = True
        self.assertTrue(c.schedule_all)

    def test_schedule_all_send_makes_both_wait_behind_the_queue(self):
        c = stackless.channel()
        c.schedule_all = True
        log = []

        def receiver():
            log.append("r-start")
            log.append(("r-got", c.receive()))

        t = stackless.tasklet(receiver)()
        t.run()
        stackless.tasklet(log.append)("b")
        c.send(1)
        log.append("s-after-send")
        self.assertEqual(log, ["r-start", "b", ("r-got", 1), "s-after-send"])

    def test_schedule_all_overrides_preference_1(self):
        c = stackless.channel()
        c.schedule_all = True
        c.preference = 1
        log = []

        def receiver():
            log.append(("r-got", c.receive()))

        t = stackless.tasklet(receiver)()
        t.run()
        stackless.tasklet(log.append)("b")
        c.send(1)
        log.append("s-after-send")
        self.assertEqual(log, ["b", ("r-got", 1), "s-after-send"])


class TempvalTest(StacklessTestCase):
    """A channel exchange leaves no value behind in either tasklet's tempval
    (a left-over value would be returned by a later switch, or kept alive)."""

    def check_exchange(self, main_sends, partner_waits, preference=-1, schedule_all=False):
        c = stackless.channel()
        c.preference = preference
        c.schedule_all = schedule_all
        done = stackless.channel()
        seen = {}

        def partner():
            if main_sends:
                seen["got"] = c.receive()
            else:
                c.send("from partner")
            seen["own tempval"] = stackless.getcurrent().tempval
            done.receive()

        t = stackless.tasklet(partner)()
        if partner_waits:
            t.run()
        if main_sends:
            c.send("from main")
        else:
            seen["got"] = c.receive()
        self.assertIsNone(stackless.getmain().tempval)
        stackless.run()  # the partner goes on until it waits on `done`
        self.assertTrue(t.blocked)
        self.assertEqual(seen["got"], "from main" if main_sends else "from partner")
        self.assertIsNone(seen["own tempval"])
        self.assertIsNone(t.tempval)
        self.assertIsNone(stackless.getmain().tempval)
        done.send(None)
        self.assertFalse(t.alive)

    def test_no_tempval_is_left_behind_by_any_exchange(self):
        for preference in (-1, 0, 1):
            for main_sends in (True, False):
                for partner_waits in (True, False):
                    with self.subTest(preference=preference, main_sends=main_sends, partner_waits=partner_waits):
                        self.check_exchange(main_sends, partner_waits, preference)

    def test_no_tempval_is_left_behind_by_a_schedule_all_exchange(self):
        for main_sends in (True, False):
            for partner_waits in (True, False):
                with self.subTest(main_sends=main_sends, partner_waits=partner_waits):
                    self.check_exchange(main_sends, partner_waits, schedule_all=True)


class ExceptionsTest(StacklessTestCase):

    def test_send_exception_raises_in_the_receiver_with_args(self):
        c = stackless.channel()
        stackless.tasklet(c.send_exception)(ValueError, 1, 2, 3)
        with self.assertRaises(ValueError) as cm:
            c.receive()
        self.assertEqual(cm.exception.args, (1, 2, 3))

    def test_send_exception_to_waiting_receiver(self):
        c = stackless.channel()
        got = []

        def receiver():
            try:
                c.receive()
            except KeyError as e:
                got.append(e.args)

        stackless.tasklet(receiver)().run()
        c.send_exception(KeyError, "k")
        stackless.run()
        self.assertEqual(got, [("k",)])

    def test_send_throw_delivers_the_instance(self):
        c = stackless.channel()
        exc = ValueError("inst")
        stackless.tasklet(c.send_throw)(exc)
        with self.assertRaises(ValueError) as cm:
            c.receive()
        self.assertIs(cm.exception, exc)

    def test_send_throw_keeps_the_senders_traceback(self):
        c = stackless.channel()

        def failing_function():
            raise ValueError(1)

        def sender():
            try:
                failing_function()
            except ValueError:
                c.send_throw(*sys.exc_info())

        stackless.tasklet(sender)()
        try:
            c.receive()
        except ValueError:
            names = [entry.name for entry in traceback.extract_tb(sys.exc_info()[2])]
        else:
            self.fail("receive() did not raise")
        self.assertIn("failing_function", names)

    def test_send_throw_with_class_and_value(self):
        c = stackless.channel()
        stackless.tasklet(c.send_throw)(IndexError, "v")
        with self.assertRaises(IndexError) as cm:
            c.receive()
        self.assertEqual(cm.exception.args, ("v",))

    def test_channel_usable_after_exception_delivery(self):
        c = stackless.channel()
        stackless.tasklet(c.send_exception)(ValueError)
        with self.assertRaises(ValueError):
            c.receive()
        stackless.tasklet(c.send)(2)
        self.assertEqual(c.receive(), 2)


class IterationAndSequenceTest(StacklessTestCase):

    def test_iterating_a_channel_receives_until_stop_iteration(self):
        c = stackless.channel()
        got = []

        def sender():
            for i in range(4):
                c.send(i)
            c.send_exception(StopIteration)

        stackless.tasklet(sender)()
        stackless.tasklet(lambda: got.extend(c))()
        stackless.run()
        self.assertEqual(got, [0, 1, 2, 3])

    def test_channel_is_its_own_iterator(self):
        c = stackless.channel()
        self.assertIs(iter(c), c)

    def test_next_receives_one_value(self):
        c = stackless.channel()
        stackless.tasklet(c.send)("n")
        self.assertEqual(next(c), "n")

    def test_send_sequence_returns_the_number_of_items(self):
        c = stackless.channel()
        counts = []
        got = []
        stackless.tasklet(lambda: counts.append(c.send_sequence(range(5))))()
        stackless.tasklet(lambda: got.extend(c.receive() for _ in range(5)))()
        stackless.run()
        self.assertEqual(counts, [5])
        self.assertEqual(got, [0, 1, 2, 3, 4])

    def test_send_sequence_accepts_a_generator(self):
        c = stackless.channel()
        counts = []
        stackless.tasklet(lambda: counts.append(c.send_sequence(i * i for i in range(3))))()
        got = [c.receive() for _ in range(3)]
        stackless.run()
        self.assertEqual((got, counts), ([0, 1, 4], [3]))

    def test_send_sequence_of_empty_iterable_returns_zero_without_blocking(self):
        c = stackless.channel()
        self.assertEqual(c.send_sequence([]), 0)

    def test_send_sequence_feeds_a_channel_iterator(self):
        c = stackless.channel()
        got = []

        def sender():
            c.send_sequence("abc")
            c.send_exception(StopIteration)

        stackless.tasklet(sender)()
        stackless.tasklet(lambda: got.extend(c))()
        stackless.run()
        self.assertEqual(got, ["a", "b", "c"])


class CloseTest(StacklessTestCase):

    def test_new_channel_is_neither_closing_nor_closed(self):
        c = stackless.channel()
        self.assertFalse(c.closing)
        self.assertFalse(c.closed)

    def test_close_on_empty_channel_makes_it_closed(self):
        c = stackless.channel()
        c.close()
        self.assertTrue(c.closing)
        self.assertTrue(c.closed)

    def test_send_on_closed_channel_raises_value_error(self):
        c = stackless.channel()
        c.close()
        with self.assertRaises(ValueError):
            c.send(1)

    def test_receive_on_closed_channel_raises_value_error(self):
        c = stackless.channel()
        c.close()
        with self.assertRaises(ValueError):
            c.receive()

    def test_iterating_a_closed_channel_stops_immediately(self):
        c = stackless.channel()
        c.close()
        self.assertEqual(list(c), [])

    def test_close_with_waiting_sender_is_closing_until_drained(self):
        c = stackless.channel()
        stackless.tasklet(c.send)("last")
        stackless.run()
        c.close()
        self.assertTrue(c.closing)
        self.assertFalse(c.closed)
        self.assertEqual(c.receive(), "last")
        self.assertTrue(c.closed)
        stackless.run()

    def test_closing_channel_refuses_a_new_blocking_receiver(self):
        c = stackless.channel()
        stackless.tasklet(c.send)("last")
        stackless.run()
        c.close()
        c.receive()
        with self.assertRaises(ValueError):
            c.receive()
        stackless.run()

    def test_open_reopens_a_closed_channel(self):
        c = stackless.channel()
        c.close()
        c.open()
        self.assertFalse(c.closing)
        self.assertFalse(c.closed)
        stackless.tasklet(c.send)(3)
        self.assertEqual(c.receive(), 3)

    def test_send_sequence_then_close_ends_iteration_after_stop(self):
        c = stackless.channel()
        got = []

        def sender():
            self.assertEqual(c.send_sequence(range(3)), 3)
            c.send_exception(StopIteration)
            c.close()

        stackless.tasklet(sender)()
        stackless.tasklet(lambda: got.extend(c))()
        stackless.run()
        self.assertEqual(got, [0, 1, 2])
        self.assertTrue(c.closed)


if __name__ == "__main__":
    unittest.main()


class ChannelMonitor:
    "A channel monitor acting as a callback for set_channel_callback() (from Stackless's test_chan_cb)."

    def __init__(self):
        self.history = []

    def __call__(self, channel, tasklet, sending, willblock):
        self.history.append((channel, tasklet, sending, willblock, tasklet.tempval))


class ChannelCallbackTest(StacklessTestCase):
    """Ported from Stackless's test_chan_cb.py, plus the arguments channelobject.c passes."""

    def setUp(self):
        super().setUp()
        self.addCleanup(stackless.set_channel_callback, None)

    def test_get_and_set_return_the_previous_callback(self):
        mon = ChannelMonitor()
        self.assertIsNone(stackless.get_channel_callback())
        self.assertIsNone(stackless.set_channel_callback(mon))
        self.assertIs(stackless.get_channel_callback(), mon)
        self.assertIs(stackless.set_channel_callback(None), mon)
        self.assertIsNone(stackless.get_channel_callback())

    def test_a_callback_must_be_callable(self):
        with self.assertRaisesRegex(TypeError, "^channel callback must be callable$"):
            stackless.set_channel_callback(1)

    def test_a_send_to_a_waiting_receiver_is_seen_with_the_value_as_tempval(self):
        chan = stackless.channel()
        receiver = stackless.tasklet(lambda ch: ch.receive())(chan)
        receiver.run()  # now blocked receiving
        mon = ChannelMonitor()
        stackless.set_channel_callback(mon)
        chan.send(42)
        stackless.set_channel_callback(None)
        self.assertEqual(mon.history, [(chan, stackless.main, 1, 0, 42)])

    def test_each_action_reports_the_acting_tasklet_direction_and_blocking(self):
        chan = stackless.channel()
        mon = ChannelMonitor()

        def receiver():
            chan.receive()

        t = stackless.tasklet(receiver)()
        stackless.set_channel_callback(mon)
        stackless.run()      # t receives and blocks
        chan.send("x")       # main sends to it: no block
        stackless.set_channel_callback(None)
        stackless.run()
        self.assertEqual([h[1:4] for h in mon.history],
                         [(t, 0, 1), (stackless.main, 1, 0)])
        self.assertTrue(all(h[0] is chan for h in mon.history))

    def test_an_error_in_the_callback_is_dropped(self):
        def failing(*args):
            raise ZeroDivisionError

        chan = stackless.channel()
        chan.preference = 1  # the sender keeps running
        stackless.tasklet(chan.receive)().run()
        stackless.set_channel_callback(failing)
        chan.send(1)
        stackless.set_channel_callback(None)
        self.assertEqual(chan.balance, 0)

    def test_a_channel_action_inside_the_callback_is_refused(self):
        inner = stackless.channel()
        errors = []

        def cb(channel, tasklet, sending, willblock):
            if channel is not inner:
                try:
                    inner.send(1)
                except RuntimeError as e:
                    errors.append(str(e))

        chan = stackless.channel()
        chan.preference = 1
        stackless.tasklet(chan.receive)().run()
        stackless.set_channel_callback(cb)
        chan.send(1)
        stackless.set_channel_callback(None)
        self.assertEqual(errors, ["Recursive channel call due to callbacks!"])
        self.assertEqual(inner.balance, 0)
