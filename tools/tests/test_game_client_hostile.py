"""game_client.py against servers that misbehave: a fake server on 127.0.0.1
(a tasklet of this interpreter, speaking tools/wire.py and protoc's classes)
closes, says nothing, sends garbage, oversized or unparsable frames, values
nested too deep, a kind with no place on a client connection. The client
must raise a clear error quickly and never hang: every case is bounded."""

import os
import socket
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "client"))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "engine", "tests", "python"))

import game_client  # noqa: E402
import stackless  # noqa: E402
import support  # noqa: E402
import wire  # noqa: E402
from support import StacklessTestCase  # noqa: E402

setUpModule, tearDownModule = support.setUpModule, support.tearDownModule
BOUND_S = 5.0  # a misbehaving server is noticed well within this

game_client.load_protos()
import handshake_pb2  # noqa: E402
import rpc_pb2  # noqa: E402
import value_pb2  # noqa: E402


def frame(message, **header):
    return wire.encode_message(wire.Header(**header), message)


ACCEPT = frame(handshake_pb2.HelloReply(accepted=True, version=1, max_frame_bytes=1 << 20,
                                        max_decompressed_bytes=4 << 20, heartbeat_interval_ms=10000,
                                        role=handshake_pb2.ROLE_PROXY))


class FakeServer:
    """One connection, served by `behave(sock)` in a tasklet; the socket is
    closed after it returns."""

    def __init__(self, test, behave):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)
        self.port = self.listener.getsockname()[1]
        self.behave = behave
        self.tasklet = stackless.tasklet(self.serve)()
        test.addCleanup(self.close)

    def serve(self):
        sock, _ = self.listener.accept()
        sock.settimeout(BOUND_S * 4)
        try:
            self.behave(sock)
        finally:
            sock.close()

    def close(self):
        if self.tasklet.alive:
            self.tasklet.kill()
        self.listener.close()


def read_frame(sock):
    """The client's next frame (the client sends one at a time and waits: nothing of a second is lost)."""
    decoder = wire.Decoder()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError
        frames = decoder.feed(chunk)
        if frames:
            return frames[0]


def send_then_wait_for_the_client_to_go(sock, replies):
    for reply in replies:
        sock.sendall(reply)
    while sock.recv(65536):
        pass


def hello_then(*replies):
    """Reads the Hello, sends `replies` (bytes) one after another, then waits for the client to go."""
    def behave(sock):
        read_frame(sock)
        send_then_wait_for_the_client_to_go(sock, replies)
    return behave


def after_call(*replies):
    """Accepts the handshake, waits for an RpcCall, answers with `replies`."""
    def behave(sock):
        read_frame(sock)
        sock.sendall(ACCEPT)
        read_frame(sock)
        send_then_wait_for_the_client_to_go(sock, replies)
    return behave


def deep_value(levels):
    value = value_pb2.Value(int_value=1)
    for _ in range(levels):
        outer = value_pb2.Value()
        outer.list_value.items.add().CopyFrom(value)
        value = outer
    return value


class HostileServerTest(StacklessTestCase):
    deadline_s = 60

    def expect(self, behave, error, pattern, action=None):
        """`action(client)` (or the connection itself) against `behave` raises
        `error` matching `pattern`, within BOUND_S."""
        server = FakeServer(self, behave)
        start = time.monotonic()
        with self.assertRaisesRegex(error, pattern):
            client = game_client.connect("127.0.0.1", server.port, timeout=BOUND_S / 2)
            self.addCleanup(client.close)
            action(client)
        self.assertLess(time.monotonic() - start, BOUND_S)

    def test_a_server_that_closes_after_the_hello(self):
        self.expect(read_frame, game_client.Disconnected, "closed the connection during the handshake")

    def test_a_server_that_closes_without_reading(self):
        # A reset or an end of stream, whichever the kernel delivers first: either is a clear Disconnected.
        self.expect(lambda sock: None, game_client.Disconnected,
                    "(closed the connection|the connection failed: .*) during the handshake")

    def test_a_server_that_never_answers_the_hello(self):
        self.expect(hello_then(), TimeoutError, "handshake: no HelloReply within 2.5 s")

    def test_a_server_that_answers_http(self):
        self.expect(hello_then(b"HTTP/1.1 400 Bad Request\r\n\r\n"), game_client.ProtocolError,
                    r"handshake: a frame of 1347703880 bytes \(the protocol allows 12\.\.4096\)")

    def test_a_refusal_carries_the_servers_reason(self):
        refusal = frame(handshake_pb2.HelloReply(accepted=False, reason="server requires TLS"))
        self.expect(hello_then(refusal), game_client.HandshakeRefused, "refused the connection: server requires TLS")

    def test_an_oversized_frame_closes_the_connection(self):
        oversized = (2 << 20).to_bytes(4, "little") + bytes(12)
        self.expect(after_call(oversized), game_client.ProtocolError, "bad frame: oversized: frame length 2097152",
                    lambda c: c.call("ping", "ping"))

    def test_a_payload_that_does_not_parse(self):
        garbage = wire.encode_frame(wire.Header(kind=wire.Kind.RPC_REPLY), b"\xff\xff\xff\xff")
        self.expect(after_call(garbage), game_client.ProtocolError, "bad RPC_REPLY: bad_payload",
                    lambda c: c.call("ping", "ping"))

    def test_a_value_nested_too_deep(self):
        reply = frame(rpc_pb2.RpcReply(call_id=1, result=deep_value(40)))
        self.expect(after_call(reply), game_client.ProtocolError, "bad value: Value nested deeper than 30 levels",
                    lambda c: c.call("ping", "ping"))

    def test_a_kind_with_no_place_on_a_client_connection(self):
        self.expect(after_call(ACCEPT), game_client.ProtocolError, "kind 2 \\(HELLO_REPLY\\), which has no place",
                    lambda c: c.call("ping", "ping"))

    def test_a_close_then_the_end_of_the_stream_mid_call(self):
        def behave(sock):
            read_frame(sock)
            sock.sendall(ACCEPT)
            read_frame(sock)
            sock.sendall(frame(handshake_pb2.Close(reason="logged in again elsewhere")))
        self.expect(behave, game_client.Disconnected, "closed the connection: logged in again elsewhere",
                    lambda c: c.call("ping", "ping"))

    def test_a_call_never_answered_times_out_and_a_late_answer_is_dropped(self):
        answered = frame(rpc_pb2.RpcReply(call_id=1, result=value_pb2.Value(string_value="late")))
        second = frame(rpc_pb2.RpcReply(call_id=2, result=value_pb2.Value(string_value="second")))

        def behave(sock):
            read_frame(sock)
            sock.sendall(ACCEPT)
            read_frame(sock)            # call 1: no answer until call 2 comes
            read_frame(sock)
            sock.sendall(answered + second)
            while sock.recv(65536):
                pass

        server = FakeServer(self, behave)
        client = game_client.connect("127.0.0.1", server.port, timeout=BOUND_S)
        self.addCleanup(client.close)
        start = time.monotonic()
        with self.assertRaisesRegex(game_client.CallTimeout, "ping.ping: no answer within 0.5 s"):
            client.call("ping", "ping", timeout=0.5)
        self.assertLess(time.monotonic() - start, BOUND_S)
        self.assertEqual(client.call("ping", "ping"), "second")


if __name__ == "__main__":
    unittest.main()
