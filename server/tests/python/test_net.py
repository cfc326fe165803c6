"""Packet connections seen from tasklets (the _net module, server/net/).

Connections live on the engine's IO threads (netproto::Connection): packets are
read ahead and queued before anyone asks; a receive parks only the calling
tasklet through await_completion, so every dispatch strategy delivers them;
hostile input closes that connection only, with the reason in the exception.
The peers that misbehave are plain sockets of the standard library (they block
the whole thread here, which is what a test client may do).
"""

import os
import socket
import struct
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "engine", "tests", "python"))

import _engine  # noqa: E402
import _net  # noqa: E402
import gameloop  # noqa: E402
import stackless  # noqa: E402
import support  # noqa: E402
from support import StacklessTestCase, SHARD_BINARY, run_child, wait_until  # noqa: E402
from test_gameloop import LoopTestCase  # noqa: E402

TaskletExit = stackless.TaskletExit
HOST = "127.0.0.1"


def setUpModule():
    support.setUpModule()


def tearDownModule():
    # Every connection's IO thread lets it go once it is closed and dropped.
    import gc
    gc.collect()
    wait_until(lambda: _net._counts() == {"connections": 0, "listeners": 0, "objects": 0},
               what="connections and listeners released: %r" % (_net._counts(),))
    support.tearDownModule()


def frame(payload, kind=_net.NOTIFICATION, version=1):
    """One frame as docs/protocol.md draws it: length, 12-byte header, payload."""
    return struct.pack("<IBBBBH", 12 + len(payload), version, kind, 0, 0, 0) + b"\0" * 6 + payload


# Hello{min_version: 1, max_version: 1} offering no codec, serialised by hand
# (docs/protocol.md, "Handshake"), kind 1.
HELLO = frame(bytes([0x08, 0x01, 0x10, 0x01]), kind=1)


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("the server closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def raw_client(port):
    """A plain socket past the handshake: it sends Hello and reads HelloReply."""
    s = socket.create_connection((HOST, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(HELLO)
    (length,) = struct.unpack("<I", recv_exactly(s, 4))
    recv_exactly(s, length)
    return s


class NetTestCase(StacklessTestCase):

    def listen(self, **kwargs):
        listener = _net.listen(HOST, 0, **kwargs)
        self.addCleanup(listener.close)
        return listener

    def pair(self, **kwargs):
        """(client, server) connections over loopback, made on the main tasklet."""
        listener = self.listen(**kwargs)
        client = _net.connect(HOST, listener.port)
        server = listener.accept(timeout=5)
        self.addCleanup(client.close)
        self.addCleanup(server.close)
        return client, server


class EchoTest(NetTestCase):

    def test_many_tasklets_echo_over_loopback(self):
        listener = self.listen()
        clients, rounds = 40, 25
        results = {}

        def serve(connection):
            connection.blockingsend = False
            try:
                while True:
                    connection.sendpacket(connection.recvpacket())
            except _net.PeerClosed:
                pass

        def acceptor():
            for _ in range(clients):
                stackless.tasklet(serve)(listener.accept())

        def client(i):
            c = _net.connect(HOST, listener.port)
            got = []
            for r in range(rounds):
                c.sendpacket(b"%d:%d" % (i, r))
                got.append(c.recvpacket())
            c.close()
            results[i] = got

        stackless.tasklet(acceptor)()
        for i in range(clients):
            stackless.tasklet(client)(i)
        stackless.run()
        self.assertEqual(sorted(results), list(range(clients)))
        for i, got in results.items():
            self.assertEqual(got, [b"%d:%d" % (i, r) for r in range(rounds)])

    def test_a_packet_that_already_arrived_is_returned_without_waiting(self):
        client, server = self.pair()
        client.blockingsend = False
        for i in range(3):
            client.sendpacket(b"p%d" % i)
        wait_until(lambda: server.stats()["recv_queued"] == 3, what="read ahead")
        before = sum(s["completions"] for s in gameloop.dispatch_stats().values())
        self.assertEqual([server.recvpacket() for _ in range(3)], [b"p0", b"p1", b"p2"])
        self.assertEqual(sum(s["completions"] for s in gameloop.dispatch_stats().values()), before,
                         "a packet already queued went through a wait")

    def test_totals_count_the_packets_and_wire_bytes_of_every_connection(self):
        client, server = self.pair(codec="none")
        before = _net.totals()
        for i in range(3):
            client.sendpacket(b"p%d" % i)
        self.assertEqual([server.recvpacket(timeout=5) for _ in range(3)], [b"p0", b"p1", b"p2"])
        after = _net.totals()
        delta = {k: after[k] - before[k] for k in after}
        # Both ends are in this process; each frame is 16 bytes of prefix and header and its payload.
        self.assertEqual(delta, {"packets_in": 3, "packets_out": 3, "bytes_in": 3 * 18, "bytes_out": 3 * 18})

    def test_gather_send_makes_one_packet_of_every_buffer(self):
        client, server = self.pair()
        client.send(b"a", (b"b", memoryview(b"cd")), bytearray(b"e"), [])
        self.assertEqual(server.recvpacket(timeout=5), b"abcde")
        with self.assertRaises(TypeError):
            client.sendpacket((b"a", b"b"))

    def test_compressed_connections_round_trip(self):
        for codec in ("snappy", "zlib"):
            with self.subTest(codec=codec):
                listener = self.listen(codec=codec)
                client = _net.connect(HOST, listener.port, codec=codec)
                server = listener.accept(timeout=5)
                big = b"abcd" * 50000
                client.sendpacket(big)
                self.assertEqual(server.recvpacket(timeout=5), big)
                self.assertLess(client.stats()["bytes_out"], len(big) // 4)
                client.close()
                server.close()

    def test_a_blocking_send_returns_once_written_and_a_non_blocking_one_at_once(self):
        client, server = self.pair()
        self.assertTrue(client.blockingsend)
        client.sendpacket(b"x")
        self.assertEqual(client.stats()["packets_out"], 1)  # written when it returned
        client.blockingsend = False
        client.sendpacket(b"y")
        self.assertEqual([server.recvpacket(timeout=5), server.recvpacket(timeout=5)], [b"x", b"y"])

    def test_receive_timeout_is_a_timeout_error_and_the_connection_goes_on(self):
        client, server = self.pair()
        start = time.monotonic()
        with self.assertRaises(TimeoutError):
            server.recvpacket(timeout=0.05)
        self.assertGreaterEqual(time.monotonic() - start, 0.04)
        client.sendpacket(b"later")
        self.assertEqual(server.recvpacket(timeout=5), b"later")

    def test_tasklets_waiting_on_one_connection_at_once_each_get_a_packet_round_after_round(self):
        # A connection keeps one waiter between waits and makes another while
        # it is busy: several receivers and a blocking sender wait on one
        # connection together, and the kept waiter is reused round after round.
        client, server = self.pair()
        got = []
        for round_ in range(20):
            receivers = [stackless.tasklet(lambda: got.append(server.recvpacket(timeout=5)))() for _ in range(3)]
            for t in receivers:
                t.run()  # each parks in recvpacket
            sent = []
            sender = stackless.tasklet(lambda: sent.append(server.sendpacket(b"reply %d" % round_)))()
            for i in range(3):
                client.sendpacket(b"%d.%d" % (round_, i))
            deadline = time.monotonic() + 5
            while any(t.alive for t in receivers + [sender]):
                if time.monotonic() > deadline:
                    self.fail("suspected deadlock: a waiter of round %d never woke" % round_)
                stackless.run()
                time.sleep(0.001)
            self.assertEqual(client.recvpacket(timeout=5), b"reply %d" % round_)
            self.assertEqual(sent, [None])
        self.assertEqual(got, [b"%d.%d" % (r, i) for r in range(20) for i in range(3)])


class ErrorTest(NetTestCase):

    def test_peer_closed_is_an_exception_with_the_reason_after_the_queued_packets(self):
        client, server = self.pair()
        client.sendpacket(b"last words")
        client.close()
        self.assertEqual(server.recvpacket(timeout=5), b"last words")
        with self.assertRaises(_net.PeerClosed) as caught:
            server.recvpacket(timeout=5)
        self.assertIn("peer closed", str(caught.exception))
        self.assertIsInstance(caught.exception, OSError)

    def test_with_blockingsend_off_an_error_surfaces_on_the_next_call(self):
        client, server = self.pair()
        client.blockingsend = False
        server.close()
        wait_until(lambda: client.close_reason is not None, what="the client sees the close")
        with self.assertRaises(_net.PeerClosed):
            client.sendpacket(b"into the void")

    def test_a_packet_over_the_limit_is_refused_and_the_connection_goes_on(self):
        listener = self.listen(max_packet=1000)
        client = _net.connect(HOST, listener.port, max_packet=1000)
        self.addCleanup(client.close)
        server = listener.accept(timeout=5)
        with self.assertRaises(_net.TooLarge) as caught:
            client.sendpacket(b"x" * 1001)
        self.assertIn("over the limit", str(caught.exception))
        client.sendpacket(b"x" * 1000)
        self.assertEqual(len(server.recvpacket(timeout=5)), 1000)

    def test_connect_to_a_closed_port_is_refused(self):
        # A port just bound and closed again on this thread (a _net listener
        # closes on its IO thread, later: a connect could still be accepted).
        probe = socket.socket()
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
        probe.close()
        with self.assertRaises(ConnectionRefusedError):
            _net.connect(HOST, port, timeout=5)

    def test_a_name_is_not_an_address(self):
        with self.assertRaises(ValueError):
            _net.connect("localhost", 1)


class HostileInputTest(NetTestCase):
    """Bad bytes close that connection, with the reason; the others go on."""

    def setUp(self):
        super().setUp()
        self.listener = self.listen(max_packet=4096)
        self.good_client = _net.connect(HOST, self.listener.port)
        self.good_server = self.listener.accept(timeout=5)
        self.addCleanup(self.good_client.close)
        # The suite keeps its test cases: they must not keep connections.
        self.addCleanup(lambda: [delattr(self, name) for name in ("listener", "good_client", "good_server")])

    def bad_pair(self, listener=None):
        listener = listener or self.listener
        raw = raw_client(listener.port)
        self.addCleanup(raw.close)
        server = listener.accept(timeout=5)
        self.addCleanup(server.close)
        return raw, server

    def assert_others_go_on(self):
        self.good_client.sendpacket(b"still fine")
        self.assertEqual(self.good_server.recvpacket(timeout=5), b"still fine")

    def test_garbage_is_a_protocol_error(self):
        raw, server = self.bad_pair()
        raw.sendall(frame(b"hello", version=0x77))
        with self.assertRaises(_net.ProtocolError) as caught:
            server.recvpacket(timeout=5)
        self.assertIn("protocol error", str(caught.exception))
        self.assert_others_go_on()

    def test_an_oversized_length_is_too_large_before_its_body_arrives(self):
        raw, server = self.bad_pair()
        raw.sendall(struct.pack("<I", 1 << 30))
        with self.assertRaises(_net.TooLarge) as caught:
            server.recvpacket(timeout=5)
        self.assertIn("exceeds limit", str(caught.exception))
        self.assert_others_go_on()

    def test_a_stream_ending_inside_a_frame_is_truncated(self):
        raw, server = self.bad_pair()
        raw.sendall(frame(b"cut short")[:-3])
        raw.close()
        with self.assertRaises(_net.ProtocolError) as caught:
            server.recvpacket(timeout=5)
        self.assertIn("truncated", str(caught.exception))
        self.assert_others_go_on()

    def test_a_slow_drip_arrives_whole_and_a_stalled_one_times_out(self):
        raw, server = self.bad_pair(self.listen(idle_timeout=0.5))
        for byte in frame(b"drip"):
            raw.send(bytes([byte]))
            time.sleep(0.01)  # each byte resets the idle clock: 0.2 s in all
        self.assertEqual(server.recvpacket(timeout=5), b"drip")
        raw.sendall(frame(b"stall")[:7])
        start = time.monotonic()
        with self.assertRaises(_net.IdleTimeout) as caught:
            server.recvpacket(timeout=5)
        self.assertIsInstance(caught.exception, TimeoutError)
        self.assertIn("idle timeout", str(caught.exception))
        self.assertLess(time.monotonic() - start, 2)
        self.assert_others_go_on()

    def test_the_reason_is_logged(self):
        script = textwrap.dedent("""
            import socket, struct, _net
            listener = _net.listen("127.0.0.1", 0)
            raw = socket.create_connection(("127.0.0.1", listener.port))
            raw.sendall(struct.pack("<IBBBBH", 16, 1, 1, 0, 0, 0) + bytes(6) + bytes([8, 1, 16, 1]))
            raw.recv(4096)  # HelloReply
            server = listener.accept(timeout=5)
            raw.sendall(struct.pack("<IBBBBH", 14, 9, 9, 0, 0, 0) + bytes(8))
            try:
                server.recvpacket(timeout=5)
            except _net.ProtocolError:
                print("raised")
        """)
        child = run_child([SHARD_BINARY, "python", "-c", script])
        self.assertEqual(child.returncode, 0, child.stderr)
        self.assertEqual(child.stdout.strip(), "raised")
        self.assertRegex(child.stderr, r"netproto: connection 127\.0\.0\.1:\d+ closed: protocol error: .*version")


class BackpressureTest(NetTestCase):

    def test_a_peer_that_never_reads_is_cut_off(self):
        listener = self.listen(max_send_bytes=1 << 20)
        raw = raw_client(listener.port)  # never reads
        self.addCleanup(raw.close)
        server = listener.accept(timeout=5)
        self.addCleanup(server.close)
        server.blockingsend = False
        chunk = b"z" * 65536
        with self.assertRaises(_net.Backpressure) as caught:
            for _ in range(100000):
                server.sendpacket(chunk)
                if server.stats()["send_queued_bytes"] < (1 << 19):
                    _engine.sleep(0.001)  # let the kernel's buffers fill
        self.assertIn("does not read", str(caught.exception))
        self.assertIsNotNone(server.close_reason)


class KillTest(NetTestCase):

    def test_killing_a_receiving_tasklet_cancels_the_wait_and_the_packet_goes_to_the_next(self):
        client, server = self.pair()
        before = _engine.io_stats()["cancellations"]
        got = []
        t = stackless.tasklet(lambda: got.append(server.recvpacket()))()
        t.run()  # runs until it parks in recvpacket
        self.assertTrue(t.alive)
        self.assertFalse(t.scheduled)
        t.kill()
        self.assertFalse(t.alive)
        self.assertEqual(_engine.io_stats()["cancellations"], before + 1)
        client.sendpacket(b"for whoever asks next")
        self.assertEqual(server.recvpacket(timeout=5), b"for whoever asks next")
        self.assertEqual(got, [])

    def test_a_kill_under_each_dispatch_strategy_withdraws_only_that_wait(self):
        self.addCleanup(gameloop.set_dispatch_strategy, "main_loop")
        client, server = self.pair()
        for strategy in gameloop.STRATEGIES:
            with self.subTest(strategy=strategy):
                gameloop.set_dispatch_strategy(strategy)
                killed = stackless.tasklet(server.recvpacket)()
                killed.run()
                got = []
                waiting = stackless.tasklet(lambda: got.append(server.recvpacket(timeout=5)))()
                waiting.run()
                killed.kill()
                client.sendpacket(strategy.encode())
                stackless.run()
                self.assertEqual(got, [strategy.encode()])

    def test_killing_an_accepting_tasklet(self):
        listener = self.listen()
        t = stackless.tasklet(listener.accept)()
        t.run()
        t.kill()
        self.assertFalse(t.alive)
        client = _net.connect(HOST, listener.port)
        self.addCleanup(client.close)
        listener.accept(timeout=5).close()


class NativePathTest(NetTestCase):

    def test_native_packets_never_reach_python_nor_take_the_lock(self):
        gameloop.set_dispatch_strategy("main_loop")
        locks = _engine.io_stats()["lock_acquisitions"]
        listener = self.listen(native_count_kinds=[_net.MOVEMENT])
        client = _net.connect(HOST, listener.port)
        self.addCleanup(client.close)
        server = listener.accept(timeout=5)
        self.addCleanup(server.close)
        client.blockingsend = False
        for i in range(200):
            client.sendpacket(b"move %d" % i, kind=_net.MOVEMENT)
        client.sendpacket(b"for python")
        self.assertEqual(server.recvpacket(timeout=5), b"for python")
        self.assertEqual(listener.stats()["native_packets"], 200)
        self.assertEqual(server.stats()["native_packets"], 200)
        self.assertEqual(server.stats()["packets_in"], 1)
        self.assertEqual(_engine.io_stats()["lock_acquisitions"], locks)


class StrategyTest(LoopTestCase, NetTestCase):
    CONNECTIONS = 5
    PACKETS = 12

    def test_each_strategy_delivers_packets_to_the_right_tasklet_in_order(self):
        gameloop.set_fps(200)  # each round of packets takes a few frames (restored by LoopTestCase)
        for strategy in gameloop.STRATEGIES:
            with self.subTest(strategy=strategy):
                gameloop.set_dispatch_strategy(strategy)
                gameloop.reset_dispatch_stats()
                locks = _engine.io_stats()["lock_acquisitions"]
                listener = _net.listen(HOST, 0)
                pairs = []
                for _ in range(self.CONNECTIONS):
                    c = _net.connect(HOST, listener.port)
                    pairs.append((c, listener.accept(timeout=5)))
                received = {i: [] for i in range(self.CONNECTIONS)}

                def receiver(i, connection):
                    for _ in range(self.PACKETS):
                        received[i].append(connection.recvpacket(timeout=5))

                def sender():
                    for n in range(self.PACKETS):
                        for i, (c, _) in enumerate(pairs):
                            c.sendpacket(b"%d/%d" % (i, n))
                        _engine.sleep(0.001)  # so receivers park between packets

                receivers = [self.spawn(receiver, i, s) for i, (_, s) in enumerate(pairs)]
                self.spawn(sender)
                self.run_loop(lambda n: not any(t.alive for t in receivers))
                self.assertEqual(self.errors, [])
                for i in range(self.CONNECTIONS):
                    self.assertEqual(received[i], [b"%d/%d" % (i, n) for n in range(self.PACKETS)])
                stats = gameloop.dispatch_stats()
                self.assertGreater(stats[strategy]["completions"], 0, stats[strategy])
                taken = _engine.io_stats()["lock_acquisitions"] - locks
                if strategy != "worker_acquires_gil":
                    self.assertEqual(taken, 0, "an IO thread took the interpreter lock")

                for c, s in pairs:
                    c.close()
                    s.close()
                listener.close()


class AcceptSpreadTest(NetTestCase):

    def test_accepted_connections_land_on_more_than_one_io_thread(self):
        # Its own process: the IO threads are counted when the engine starts.
        script = textwrap.dedent("""
            import _net
            listener = _net.listen("127.0.0.1", 0)
            clients = [_net.connect("127.0.0.1", listener.port) for _ in range(8)]
            servers = [listener.accept(timeout=5) for _ in clients]
            for c, s in zip(clients, servers):
                c.sendpacket(b"ping")
                assert s.recvpacket(timeout=5) == b"ping"
                s.sendpacket(b"pong")
                assert c.recvpacket(timeout=5) == b"pong"
            print(sorted({s.io_thread for s in servers}))
        """)
        child = run_child([SHARD_BINARY, "python", "-c", script], env=dict(os.environ, SHARD_IO_THREADS="2"))
        self.assertEqual(child.returncode, 0, child.stderr)
        self.assertEqual(child.stdout.strip(), "[0, 1]")


class IdleTimeoutTest(NetTestCase):

    def test_an_idle_connection_is_closed_and_the_peer_sees_it(self):
        client, server = self.pair(idle_timeout=0.2)
        start = time.monotonic()
        with self.assertRaises(_net.IdleTimeout):
            server.recvpacket(timeout=5)
        self.assertGreaterEqual(time.monotonic() - start, 0.15)
        with self.assertRaises(_net.PeerClosed):
            client.recvpacket(timeout=5)


class PerAddressLimitTest(NetTestCase):

    def test_connections_over_the_per_address_limit_are_refused(self):
        listener = self.listen(max_per_address=2)
        first = [_net.connect(HOST, listener.port) for _ in range(2)]
        # Closed before its handshake: the connect fails.
        with self.assertRaises(_net.HandshakeFailed):
            _net.connect(HOST, listener.port)
        wait_until(lambda: listener.stats()["refused_per_address"] == 1, what="refused")
        for c in first:
            c.close()


if __name__ == "__main__":
    unittest.main()
