"""select.select, select.poll and selectors on the tasklets' thread: a wait
blocks only its tasklet, the answers and the argument errors are the stock
ones, a timeout ends it, another OS thread gets the stock calls.
"""

import select
import selectors
import socket
import time
import unittest

import _engine
import stackless
from support import StacklessTestCase, result_in_new_thread
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)
from test_tasklet_sockets import Ticker


class SelectTestCase(StacklessTestCase):
    def setUp(self):
        super().setUp()
        self.a, self.b = socket.socketpair()
        self.addCleanup(self.a.close)
        self.addCleanup(self.b.close)
        self.ticker = Ticker()
        self.addCleanup(self.ticker.stop)

    def send_later(self, delay=0.1):
        # Sent once the ticker has run a few times besides the delay: a wait
        # that blocked the thread never sees the data (it times out), however
        # slowly a loaded machine runs the ticker.
        def sender():
            time.sleep(delay)
            while self.ticker.ticks <= 3:
                time.sleep(0.01)
            self.b.sendall(b"x")

        stackless.tasklet(sender)()

    def assert_other_tasklets_ran(self):
        # The ticker first runs when the main tasklet waits (0 ticks if the
        # wait blocked the thread); a second tick means its own timer ended
        # and it ran again while ours went on. A fixed count over a 0.1 s
        # timeout (> 3 before) failed under the sanitizers on a loaded machine.
        self.assertGreater(self.ticker.ticks, 1, "the wait blocked the thread")


class SelectTest(SelectTestCase):

    def test_select_waits_for_the_socket_another_tasklet_writes_to(self):
        self.send_later()
        self.assertEqual(select.select([self.a], [], [], 5), ([self.a], [], []))
        self.assert_other_tasklets_ran()

    def test_select_answers_at_once_for_a_writable_socket(self):
        self.assertEqual(select.select([self.a], [self.a.fileno()], [], 5), ([], [self.a.fileno()], []))

    def test_select_past_its_timeout_returns_three_empty_lists(self):
        start = time.monotonic()
        self.assertEqual(select.select([self.a], [], [], 0.1), ([], [], []))
        self.assertGreaterEqual(time.monotonic() - start, 0.09)
        self.assert_other_tasklets_ran()

    def test_select_without_descriptors_sleeps_its_timeout(self):
        start = time.monotonic()
        self.assertEqual(select.select([], [], [], 0.1), ([], [], []))
        self.assertGreaterEqual(time.monotonic() - start, 0.09)
        self.assert_other_tasklets_ran()

    def test_bad_select_arguments_raise_selects_errors(self):
        with self.assertRaisesRegex(ValueError, "^timeout must be non-negative$"):
            select.select([self.a], [], [], -1)
        with self.assertRaisesRegex(TypeError, "^timeout must be a float or None$"):
            select.select([self.a], [], [], "1")
        with self.assertRaises(TypeError):
            select.select([object()], [], [], 1)

    def test_a_tasklet_killed_in_select_leaves_no_wait(self):
        waiter = stackless.tasklet(select.select)([self.a], [], [])
        stackless.schedule()
        self.assertEqual(_engine.io_stats()["waits"], 1)
        waiter.kill()
        self.assertEqual(_engine.io_stats()["waits"], 0)


class PollTest(SelectTestCase):

    def test_poll_waits_for_the_registered_socket(self):
        poller = select.poll()
        poller.register(self.a, select.POLLIN)
        self.send_later()
        self.assertEqual(poller.poll(5000), [(self.a.fileno(), select.POLLIN)])
        self.assert_other_tasklets_ran()

    def test_poll_past_its_timeout_returns_nothing_and_after_unregister_waits_for_nothing(self):
        poller = select.poll()
        poller.register(self.a.fileno(), select.POLLIN)
        self.assertEqual(poller.poll(100), [])
        poller.modify(self.a, select.POLLIN | select.POLLOUT)
        self.assertEqual(poller.poll(100), [(self.a.fileno(), select.POLLOUT)])
        poller.unregister(self.a)
        self.b.sendall(b"x")
        self.assertEqual(poller.poll(50), [])
        self.assert_other_tasklets_ran()
        with self.assertRaises(KeyError):
            poller.unregister(self.a)


class SelectorsTest(SelectTestCase):

    def check_selector(self, selector_class):
        with selector_class() as selector:
            selector.register(self.a, selectors.EVENT_READ, "data")
            self.assertEqual(selector.select(0.05), [])
            self.send_later()
            ready = selector.select(5)
            self.assertEqual([(key.fileobj, key.data, events) for key, events in ready],
                             [(self.a, "data", selectors.EVENT_READ)])
        self.assert_other_tasklets_ran()

    def test_the_default_selector_waits_only_its_tasklet(self):
        self.assertIs(selectors.DefaultSelector, selectors.EpollSelector)
        self.check_selector(selectors.DefaultSelector)

    def test_the_poll_selector_waits_only_its_tasklet(self):
        self.check_selector(selectors.PollSelector)

    def test_the_select_selector_waits_only_its_tasklet(self):
        self.check_selector(selectors.SelectSelector)


class OtherThreadTest(SelectTestCase):

    def test_select_on_another_thread_is_the_stock_call(self):
        def on_thread():
            start = time.monotonic()
            ready = select.select([self.a], [], [], 0.05)
            return ready, time.monotonic() - start

        ready, waited = result_in_new_thread(on_thread)
        self.assertEqual(ready, ([], [], []))
        self.assertGreaterEqual(waited, 0.04)


if __name__ == "__main__":
    unittest.main()
