"""Tasklet sockets: socket.socket's blocking calls block only the calling
tasklet (engine/python/tasklet_sockets), with CPython's semantics: timeouts and
their messages, errors, the timeout and blocking attributes, detach/dup,
makefile. A killed waiter's wait is cancelled and nothing leaks; other OS
threads keep stock blocking sockets; the switch turns it all off.
"""

import errno
import os
import select
import socket
import textwrap
import threading
import time
import unittest

import _engine
import gameloop
import stackless
import tasklet_sockets
import uthread
from support import StacklessTestCase, SHARD_BINARY, result_in_new_thread, run_child, wait_until
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)

TaskletExit = stackless.TaskletExit


def open_descriptors():
    return len(os.listdir("/proc/self/fd"))


def descriptors_after_warm_up(writable):
    """open_descriptors() once every IO thread's reactor exists: Asio makes one
    (an epoll, an eventfd, a timerfd) at its context's first descriptor wait,
    and keeps it. Read once these waits' own copies are closed too (by the IO
    thread, just after each wait): when the count holds still."""
    for _ in range(_engine.io_stats()["threads"]):
        _engine.io_wait(writable, select.POLLOUT, 5)
    count = open_descriptors()
    while True:
        time.sleep(0.02)
        now, count = count, open_descriptors()
        if now == count:
            return count


class Ticker:
    """A tasklet that counts while it gets to run: proof that a wait blocked
    only its own tasklet, not the thread."""

    def __init__(self, interval=0.01):
        self.ticks = 0
        self.tasklet = stackless.tasklet(self._run)(interval)

    def _run(self, interval):
        while True:
            self.ticks += 1
            time.sleep(interval)

    def stop(self):
        self.tasklet.kill()


class TaskletSocketTestCase(StacklessTestCase):
    def ticker(self):
        ticker = Ticker()
        self.addCleanup(ticker.stop)
        return ticker

    def socketpair(self):
        a, b = socket.socketpair()
        self.addCleanup(a.close)
        self.addCleanup(b.close)
        return a, b

    def listener(self):
        server = socket.create_server(("127.0.0.1", 0))
        self.addCleanup(server.close)
        return server


class BlockingCallsTest(TaskletSocketTestCase):

    def test_a_recv_waits_for_data_sent_later_by_another_tasklet(self):
        a, b = self.socketpair()
        ticker = self.ticker()

        def sender():
            time.sleep(0.1)
            b.sendall(b"late")

        stackless.tasklet(sender)()
        self.assertEqual(a.recv(10), b"late")
        self.assertGreater(ticker.ticks, 3)

    def test_accept_and_connect_meet_in_two_tasklets(self):
        server = self.listener()
        accepted = []

        def acceptor():
            conn, address = server.accept()
            with conn:
                accepted.append((conn.getblocking(), conn.gettimeout(), conn.recv(5)))

        stackless.tasklet(acceptor)()
        with socket.create_connection(server.getsockname(), timeout=5) as client:
            client.sendall(b"hello")
            wait_until(lambda: accepted, what="the acceptor's recv")
        self.assertEqual(accepted, [(True, None, b"hello")])

    def test_sendall_of_megabytes_to_a_slow_reader_arrives_whole(self):
        a, b = self.socketpair()
        data = os.urandom(4 << 20)
        received = bytearray()
        ticker = self.ticker()

        def reader():
            while len(received) < len(data):
                chunk = b.recv(65536)
                if not chunk:
                    return
                received.extend(chunk)
                time.sleep(0)  # let the sender refill

        stackless.tasklet(reader)()
        a.sendall(data)
        wait_until(lambda: len(received) == len(data), what="the reader")
        self.assertEqual(bytes(received), data)
        self.assertGreater(ticker.ticks, 0)

    def test_makefile_reads_lines_written_by_another_tasklet(self):
        a, b = self.socketpair()

        def writer():
            with b.makefile("wb") as out:
                for i in range(3):
                    out.write(b"line %d\n" % i)
                    out.flush()
                    time.sleep(0.02)

        stackless.tasklet(writer)()
        with a.makefile("rb") as lines:
            self.assertEqual([lines.readline() for _ in range(3)], [b"line 0\n", b"line 1\n", b"line 2\n"])

    def test_udp_recvfrom_waits_for_a_datagram(self):
        receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(receiver.close)
        receiver.bind(("127.0.0.1", 0))
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(sender.close)
        sender.bind(("127.0.0.1", 0))

        def send_later():
            time.sleep(0.05)
            sender.sendto(b"datagram", receiver.getsockname())

        stackless.tasklet(send_later)()
        data, address = receiver.recvfrom(100)
        self.assertEqual((data, address), (b"datagram", sender.getsockname()))

    def test_connect_to_a_host_name_resolves_it_and_connects(self):
        server = self.listener()
        with socket.create_connection(("localhost", server.getsockname()[1]), timeout=5) as client:
            self.assertEqual(client.getpeername(), server.getsockname())
        with socket.socket() as direct:
            direct.connect(("localhost", server.getsockname()[1]))
            self.assertEqual(direct.getpeername(), server.getsockname())


class CPythonSemanticsTest(TaskletSocketTestCase):
    """What CPython 3.11's socket module does, checked on sockets in cooperative mode."""

    def test_a_recv_past_its_timeout_raises_timeout_error_timed_out(self):
        a, b = self.socketpair()
        a.settimeout(0.1)
        ticker = self.ticker()
        start = time.monotonic()
        with self.assertRaises(socket.timeout) as caught:
            a.recv(1)
        self.assertGreaterEqual(time.monotonic() - start, 0.09)
        self.assertIs(type(caught.exception), TimeoutError)
        self.assertEqual(caught.exception.args, ("timed out",))
        self.assertGreater(ticker.ticks, 2)

    def test_accept_past_its_timeout_raises_timed_out(self):
        server = self.listener()
        server.settimeout(0.05)
        with self.assertRaisesRegex(TimeoutError, "^timed out$"):
            server.accept()

    def test_a_timed_out_makefile_refuses_further_reads(self):
        a, b = self.socketpair()
        a.settimeout(0.05)
        reader = a.makefile("rb")
        self.addCleanup(reader.close)
        with self.assertRaises(TimeoutError):
            reader.read(1)
        with self.assertRaisesRegex(OSError, "cannot read from timed out object"):
            reader.read(1)

    def test_a_non_blocking_socket_raises_blocking_io_error_at_once(self):
        a, b = self.socketpair()
        b.sendall(b"x")
        a.recv(1)  # cooperative mode from here on
        a.setblocking(False)
        with self.assertRaises(BlockingIOError) as caught:
            a.recv(1)
        self.assertEqual(caught.exception.errno, errno.EAGAIN)

    def test_connection_refused_raises_and_connect_ex_returns_econnrefused(self):
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        address = probe.getsockname()
        probe.close()
        with socket.socket() as client:
            with self.assertRaises(ConnectionRefusedError) as caught:
                client.connect(address)
            self.assertEqual((caught.exception.errno, caught.exception.strerror),
                             (errno.ECONNREFUSED, os.strerror(errno.ECONNREFUSED)))
        with socket.socket() as client:
            self.assertEqual(client.connect_ex(address), errno.ECONNREFUSED)

    def test_timeout_attributes_read_what_the_program_set(self):
        a, b = self.socketpair()
        self.assertEqual((a.gettimeout(), a.timeout, a.getblocking()), (None, None, True))
        b.sendall(b"x")
        a.recv(1)  # cooperative mode from here on
        self.assertEqual((a.gettimeout(), a.timeout, a.getblocking()), (None, None, True))
        a.settimeout(2.5)
        self.assertEqual((a.gettimeout(), a.timeout, a.getblocking()), (2.5, 2.5, True))
        a.settimeout(3)
        self.assertEqual(a.gettimeout(), 3.0)
        a.setblocking(False)
        self.assertEqual((a.gettimeout(), a.getblocking()), (0.0, False))
        a.setblocking(True)
        self.assertEqual((a.gettimeout(), a.getblocking()), (None, True))
        with self.assertRaisesRegex(ValueError, "^Timeout value out of range$"):
            a.settimeout(-1)
        with self.assertRaises(TypeError):
            a.settimeout("1")
        self.assertEqual(a.gettimeout(), None)

    def test_detach_hands_back_the_descriptor_in_the_blocking_mode_stock_leaves(self):
        a, b = self.socketpair()
        b.sendall(b"x")
        a.recv(1)
        fd = a.detach()
        try:
            self.assertTrue(os.get_blocking(fd), "a socket with no timeout has a blocking descriptor")
        finally:
            os.close(fd)
        c, d = self.socketpair()
        c.settimeout(5)
        d.sendall(b"x")
        c.recv(1)
        fd = c.detach()
        try:
            self.assertFalse(os.get_blocking(fd), "a socket with a timeout is non-blocking underneath")
        finally:
            os.close(fd)

    def test_a_dup_keeps_the_timeout_and_both_copies_keep_blocking_only_their_tasklet(self):
        a, b = self.socketpair()
        b.sendall(b"x")
        a.recv(1)
        copy = a.dup()
        self.addCleanup(copy.close)
        self.assertEqual((copy.family, copy.type, copy.proto, copy.gettimeout()), (a.family, a.type, a.proto, None))
        ticker = self.ticker()
        for sock in (a, copy):
            sock.settimeout(0.05)
            with self.assertRaises(TimeoutError):
                sock.recv(1)
        self.assertGreater(ticker.ticks, 1)

    def test_repr_and_class_read_as_the_stock_socket(self):
        with socket.socket() as s:
            self.assertTrue(repr(s).startswith("<socket.socket fd="), repr(s))
            self.assertEqual((socket.socket.__module__, socket.socket.__qualname__), ("socket", "socket"))
            self.assertIsInstance(s, socket.SocketType)


class KilledWaiterTest(TaskletSocketTestCase):

    def test_a_tasklet_killed_in_recv_dies_with_tasklet_exit_and_its_wait_is_cancelled(self):
        a, b = self.socketpair()
        descriptors = descriptors_after_warm_up(b)
        cancellations = _engine.io_stats()["cancellations"]
        seen = []

        def reader():
            try:
                a.recv(10)
            except BaseException as e:
                seen.append(type(e))
                raise

        waiter = stackless.tasklet(reader)()
        stackless.schedule()
        self.assertEqual(_engine.io_stats()["waits"], 1)
        waiter.kill()
        self.assertEqual(seen, [TaskletExit])
        self.assertFalse(waiter.alive)
        self.assertEqual(_engine.io_stats()["waits"], 0)
        self.assertEqual(_engine.io_stats()["cancellations"], cancellations + 1)
        wait_until(lambda: open_descriptors() == descriptors, what="the wait's descriptor copy closed")
        b.sendall(b"still works")
        self.assertEqual(a.recv(20), b"still works")

    def test_shutdown_by_another_tasklet_wakes_a_reader_with_the_end_of_the_stream(self):
        a, b = self.socketpair()
        got = []
        stackless.tasklet(lambda: got.append(a.recv(10)))()
        stackless.schedule()
        self.assertEqual(_engine.io_stats()["waits"], 1)
        a.shutdown(socket.SHUT_RDWR)  # as with threads: shutdown() wakes a blocked recv, close() alone does not
        wait_until(lambda: got, what="the reader woken")
        self.assertEqual(got, [b""])

    def test_tasklets_killed_in_accept_and_in_a_tls_handshake_leave_no_descriptor_behind(self):
        import ssl
        quiet, never_accepting = self.listener(), self.listener()
        a, b = self.socketpair()
        descriptors = descriptors_after_warm_up(b)
        raw = socket.create_connection(never_accepting.getsockname())

        def accept():
            quiet.accept()  # nobody connects

        def handshake():
            tls = ssl.create_default_context().wrap_socket(raw, server_hostname="localhost",
                                                           do_handshake_on_connect=False)
            try:
                tls.do_handshake()  # waits for a server hello that never comes
            finally:
                tls.close()

        blocked = [stackless.tasklet(accept)(), stackless.tasklet(handshake)()]
        wait_until(lambda: _engine.io_stats()["waits"] == 2, what="both tasklets waiting")
        for t in blocked:
            t.kill()
        self.assertEqual(_engine.io_stats()["waits"], 0)
        self.assertEqual(raw.fileno(), -1)  # detached into the TLS socket, which is closed
        wait_until(lambda: open_descriptors() == descriptors, what="descriptors back")


class OtherThreadsTest(TaskletSocketTestCase):

    def test_a_socket_made_and_used_on_another_thread_is_a_stock_blocking_socket(self):
        def on_thread():
            a, b = socket.socketpair()
            with a, b:
                b.sendall(b"x")
                a.recv(1)
                still_blocking = os.get_blocking(a.fileno())
                a.settimeout(0.05)
                start = time.monotonic()
                try:
                    a.recv(1)
                except TimeoutError as e:
                    return still_blocking, e.args, time.monotonic() - start

        still_blocking, args, waited = result_in_new_thread(on_thread)
        self.assertTrue(still_blocking, "the thread's socket was switched to non-blocking")
        self.assertEqual(args, ("timed out",))
        self.assertGreaterEqual(waited, 0.04)

    def test_a_cooperative_socket_used_on_another_thread_blocks_that_thread(self):
        a, b = self.socketpair()
        b.sendall(b"x")
        a.recv(1)  # cooperative mode
        received = []

        def on_thread():
            received.append(a.recv(10))  # blocks this OS thread until the main thread sends

        thread = threading.Thread(target=on_thread)
        thread.start()
        time.sleep(0.05)
        self.assertEqual(received, [])
        b.sendall(b"to thread")
        thread.join(5)
        self.assertEqual(received, [b"to thread"])

    def test_time_sleep_on_another_thread_sleeps_the_thread(self):
        def on_thread():
            start = time.monotonic()
            time.sleep(0.05)
            return time.monotonic() - start, tasklet_sockets.waiting.cooperative()

        waited, cooperative = result_in_new_thread(on_thread)
        self.assertGreaterEqual(waited, 0.04)
        self.assertFalse(cooperative)


class GameLoopTest(TaskletSocketTestCase):

    def test_a_tick_hook_blocks_the_thread_as_stock_calls_do_while_tasklets_wait_cooperatively(self):
        a, b = self.socketpair()
        seen = {}
        frames = [0]

        def reader():  # a tasklet inside the loop: only it waits
            seen["reader"] = a.recv(10)

        def hook(frame, dt):  # the loop's own tasklet: cannot park, so the thread blocks
            frames[0] += 1
            if frames[0] == 2:
                start = time.monotonic()
                time.sleep(0.05)
                b.settimeout(0.05)
                try:
                    b.recv(1)
                except TimeoutError as e:
                    seen["hook"] = (e.args, time.monotonic() - start)
                b.sendall(b"from hook")
            if frames[0] == 5:
                gameloop.stop()

        stackless.tasklet(reader)()
        gameloop.add_tick(hook)
        try:
            gameloop.run()
        finally:
            gameloop.remove_tick(hook)
        self.assertEqual(seen["hook"][0], ("timed out",))
        self.assertGreaterEqual(seen["hook"][1], 0.09)
        self.assertEqual(seen["reader"], b"from hook")


class SleepTest(TaskletSocketTestCase):

    def test_twenty_tasklets_sleeping_a_fifth_of_a_second_take_one_fifth_not_four_seconds(self):
        done = []

        def sleeper(i):
            time.sleep(0.2)
            done.append(i)

        start = time.monotonic()
        uthread.parallel([lambda i=i: sleeper(i) for i in range(20)], timeout=10)
        self.assertEqual(sorted(done), list(range(20)))
        self.assertLess(time.monotonic() - start, 2.0)

    def test_bad_sleep_arguments_raise_time_sleeps_errors(self):
        for value, error, message in [("1", TypeError, "'str' object cannot be interpreted as an integer"),
                                      (-1, ValueError, "sleep length must be non-negative"),
                                      (float("nan"), ValueError, r"Invalid value NaN \(not a number\)"),
                                      (10**30, OverflowError, "timestamp too large to convert to C _PyTime_t")]:
            with self.subTest(value=value), self.assertRaisesRegex(error, "^" + message + "$"):
                time.sleep(value)


class NameLookupTest(TaskletSocketTestCase):

    def test_a_name_is_looked_up_by_a_worker_and_a_number_here(self):
        strategy = gameloop.dispatch_strategy()
        before = gameloop.dispatch_stats()[strategy]["completions"]
        found = socket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM)
        self.assertEqual(gameloop.dispatch_stats()[strategy]["completions"], before + 1)
        stock = result_in_new_thread(lambda: socket.getaddrinfo("localhost", 80, socket.AF_INET, socket.SOCK_STREAM))
        self.assertEqual(found, stock)
        numeric = socket.getaddrinfo("127.0.0.1", 80, socket.AF_INET, socket.SOCK_STREAM)
        self.assertEqual(gameloop.dispatch_stats()[strategy]["completions"], before + 1)
        self.assertEqual(numeric[0][4], ("127.0.0.1", 80))
        self.assertEqual(socket.gethostbyname("localhost"), "127.0.0.1")

    def test_an_unknown_name_raises_gaierror(self):
        with self.assertRaises(socket.gaierror):
            socket.getaddrinfo("no-such-host.invalid", 80)


class SwitchTest(TaskletSocketTestCase):

    def recv_timeout_ticks(self):
        a, b = self.socketpair()
        ticker = self.ticker()
        a.settimeout(0.1)
        with self.assertRaises(TimeoutError):
            a.recv(1)
        return ticker.ticks

    def test_set_enabled_false_makes_a_recv_block_the_thread_again(self):
        self.assertTrue(tasklet_sockets.enabled())
        self.addCleanup(tasklet_sockets.set_enabled, True)
        self.assertTrue(tasklet_sockets.set_enabled(False))
        self.assertEqual(self.recv_timeout_ticks(), 0, "a tasklet ran while the switch was off")
        self.assertFalse(tasklet_sockets.set_enabled(True))
        self.assertGreater(self.recv_timeout_ticks(), 2)

    def test_the_environment_switch_leaves_every_module_stock(self):
        code = textwrap.dedent("""
            import _socket, select, selectors, socket, time
            print(socket.socket.__mro__[1] is _socket.socket, type(time.sleep).__name__,
                  type(select.poll).__name__, selectors.PollSelector._selector_cls is select.poll)
        """)
        off = run_child([SHARD_BINARY, "python", "-c", code], env=dict(os.environ, SHARD_TASKLET_SOCKETS="0"))
        self.assertEqual(off.stdout.split(), ["True", "builtin_function_or_method", "builtin_function_or_method", "True"],
                         off.stderr)
        on = run_child([SHARD_BINARY, "python", "-c", code], env=dict(os.environ, SHARD_TASKLET_SOCKETS="1"))
        self.assertEqual(on.stdout.split(), ["False", "function", "type", "True"], on.stderr)

    def test_a_forked_child_has_stock_blocking_calls(self):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            os.write(write_end, b"1" if tasklet_sockets.waiting.cooperative() else b"0")
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            self.assertEqual(pipe.read(), b"0")
        os.waitpid(pid, 0)


class StacklessIOTest(TaskletSocketTestCase):
    """sendpacket/recvpacket, gather sends and blockingsend = False on tasklet sockets."""

    def test_packets_arrive_whole_and_in_order_with_a_big_endian_length_before_each(self):
        a, b = self.socketpair()
        payloads = [b"", b"x", os.urandom(300000), b"last"]

        def sender():
            for p in payloads:
                a.sendpacket(p)

        stackless.tasklet(sender)()
        self.assertEqual([b.recvpacket() for _ in payloads], payloads)
        a.sendpacket(b"abc")
        self.assertEqual(b.recv(7), b"\x00\x00\x00\x03abc")

    def test_the_end_of_the_stream_is_eof_error_between_packets_and_os_error_inside_one(self):
        a, b = self.socketpair()
        a.sendpacket(b"one")
        a.shutdown(socket.SHUT_WR)
        self.assertEqual(b.recvpacket(), b"one")
        with self.assertRaises(EOFError):
            b.recvpacket()
        c, d = self.socketpair()
        c.sendall(b"\x00\x00\x00\x10short")
        c.shutdown(socket.SHUT_WR)
        with self.assertRaisesRegex(OSError, "got end of file during message"):
            d.recvpacket()

    def test_a_length_over_the_limit_is_refused_before_reading_the_payload(self):
        a, b = self.socketpair()
        a.sendall(b"\xff\xff\xff\xff")
        with self.assertRaises(OSError) as caught:
            b.recvpacket()
        self.assertEqual(caught.exception.errno, errno.EMSGSIZE)
        self.assertIn("4294967295 bytes over the limit of 16777216", str(caught.exception))
        a.sendpacket(b"12345")
        with self.assertRaises(OSError):
            b.recvpacket(max_size=4)

    def test_recvpacket_is_framed_by_an_io_thread_times_out_and_can_be_killed(self):
        a, b = self.socketpair()
        descriptors = descriptors_after_warm_up(a)
        b.settimeout(0.05)
        with self.assertRaisesRegex(TimeoutError, "^timed out$"):
            b.recvpacket()
        b.settimeout(None)
        reader = stackless.tasklet(b.recvpacket)()
        stackless.schedule()
        self.assertEqual(_engine.io_stats()["waits"], 1, "the packet is not awaited on an IO thread")
        reader.kill()
        self.assertEqual(_engine.io_stats()["waits"], 0)
        wait_until(lambda: open_descriptors() == descriptors, what="the read's descriptor copy closed")

    def test_recvpacket_on_another_thread_frames_in_python_and_blocks_that_thread(self):
        a, b = self.socketpair()
        a.sendpacket(b"to a thread")
        self.assertEqual(result_in_new_thread(b.recvpacket), b"to a thread")

    def test_send_of_several_buffers_gathers_them_in_order_and_send_with_flags_is_stock(self):
        a, b = self.socketpair()
        self.assertEqual(a.send(b"ab", b"c", (b"d", memoryview(b"ef")), [bytearray(b"g")]), 7)
        self.assertEqual(b.recv(100), b"abcdefg")
        self.assertEqual(a.send(b"xy", 0), 2)
        self.assertEqual(b.recv(100), b"xy")

    def test_blockingsend_false_queues_and_returns_at_once_then_writes_in_order(self):
        a, b = self.socketpair()
        a.blockingsend = False
        self.assertFalse(a.blockingsend)
        big = os.urandom(8 << 20)  # far over the socket buffers: a blocking sendall would wait for the reader
        a.sendall(big)
        a.sendpacket(b"after")
        self.assertEqual(a.send(b"!"), 1)
        received = bytearray()
        while len(received) < len(big):
            received += b.recv(min(1 << 20, len(big) - len(received)))
        self.assertEqual(bytes(received), big)
        self.assertEqual(b.recvpacket(), b"after")
        self.assertEqual(b.recv(1), b"!")
        a.blockingsend = True  # flushes first
        self.assertTrue(a.blockingsend)

    def test_an_error_of_a_queued_send_is_raised_by_the_next_call(self):
        a, b = self.socketpair()
        a.blockingsend = False
        b.close()
        a.sendall(b"into a closed peer")
        time.sleep(0.05)  # the writer tasklet meets the error
        with self.assertRaises(BrokenPipeError):
            a.sendall(b"again")

    def test_close_writes_what_was_queued_first(self):
        a, b = self.socketpair()
        a.blockingsend = False
        a.sendpacket(b"queued before close")
        a.close()
        self.assertEqual(b.recvpacket(), b"queued before close")


if __name__ == "__main__":
    unittest.main()
