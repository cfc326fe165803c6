"""RPC between two endpoints in one process over real loopback `_net`
connections (server/python/rpc_endpoint.py, rpc_services.py): calls,
replies, every error kind, timeouts, a closed link, notifications, and a
peer that sends what an RPC link does not carry."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "engine", "tests", "python"))

import _net  # noqa: E402
import kinds_pb2  # noqa: E402
import rpc_endpoint  # noqa: E402
import rpc_errors  # noqa: E402
import rpc_pb2  # noqa: E402
import rpc_services  # noqa: E402
import support  # noqa: E402
import uthread  # noqa: E402
from rpc_services import exposed  # noqa: E402
from support import StacklessTestCase, wait_until  # noqa: E402

HOST = "127.0.0.1"


def setUpModule():
    support.setUpModule()


def tearDownModule():
    import gc
    gc.collect()
    wait_until(lambda: _net._counts() == {"connections": 0, "listeners": 0, "objects": 0},
               what="connections and listeners released: %r" % (_net._counts(),))
    support.tearDownModule()


class Echo:
    service_name = "echo"

    def __init__(self):
        self.gate = uthread.Event()
        self.started = uthread.Event()
        self.entered = 0  # gated calls started

    @exposed(role=("player", "node"))
    def echo(self, *args, **kwargs):
        return [list(args), kwargs]

    @exposed(role="node")
    def gated(self, value):
        """Answers once the test opens the gate."""
        self.entered += 1
        self.started.set()
        self.gate.wait()
        return value

    @exposed(role=("node", "player"))
    def fail(self, message):
        raise KeyError(message)

    @exposed(role="admin")
    def secret(self):
        return "for admins"

    @exposed(role="node")
    def unencodable(self):
        return object()

    @exposed(role="node")
    def relay_unavailable(self):
        """Like a relay whose onward call failed: the caller gets that error's kind."""
        raise rpc_errors.Unavailable("no sol for that")

    def hidden(self):
        return "not exposed"


class RpcTestCase(StacklessTestCase):

    def pair(self, role="node", on_notification=None):
        """(caller endpoint, served Echo, callee endpoint), both readers running."""
        listener = _net.listen(HOST, 0)
        self.addCleanup(listener.close)
        client = _net.connect(HOST, listener.port)
        server = listener.accept(timeout=5)
        self.addCleanup(client.close)
        self.addCleanup(server.close)
        services = rpc_services.Services()
        echo = services.register(Echo())
        callee = rpc_endpoint.Endpoint(server, services, role, "callee", on_notification)
        caller = rpc_endpoint.Endpoint(client, rpc_services.Services(), "node", "caller")
        self.readers = [uthread.new(callee.run), uthread.new(caller.run)]
        return caller, echo, callee


class CallTest(RpcTestCase):

    def test_call_returns_the_methods_result_with_args_and_kwargs(self):
        caller, _, _ = self.pair()
        self.assertEqual(caller.call("echo", "echo", (1, "two", [3.0, None]), {"k": b"v"}),
                         [[1, "two", [3.0, None]], {"k": b"v"}])
        self.assertEqual(caller.pending, {})

    def test_a_slow_method_does_not_hold_up_other_calls(self):
        caller, echo, _ = self.pair()
        got = []
        uthread.new(lambda: got.append(caller.call("echo", "gated", ("slow",))))
        self.assertTrue(echo.started.wait(5))
        self.assertEqual(caller.call("echo", "echo", ("fast",)), [["fast"], {}])
        self.assertEqual(got, [])
        echo.gate.set()
        wait_until(lambda: got == ["slow"], what="the slow call answered")

    def test_a_burst_past_the_serving_limit_waits_for_slots_instead_of_being_refused(self):
        caller, echo, _ = self.pair()
        self.addCleanup(setattr, rpc_endpoint, "FULL_WAIT", rpc_endpoint.FULL_WAIT)
        rpc_endpoint.FULL_WAIT = 60  # however loaded the machine, the gate opens before the reader gives up
        extra = 50
        calls = [lambda i=i: caller.call("echo", "gated", (i,), timeout=30)
                 for i in range(rpc_endpoint.MAX_SERVING + extra)]
        results = []
        uthread.new(lambda: results.extend(uthread.parallel(calls, timeout=60)))
        wait_until(lambda: echo.entered == rpc_endpoint.MAX_SERVING, what="every serving slot taken")
        echo.gate.set()
        wait_until(lambda: len(results) == len(calls), timeout=60, what="every call answered")
        self.assertEqual(results, list(range(len(calls))))

    def test_concurrent_calls_are_matched_by_call_id(self):
        caller, _, _ = self.pair()
        results = uthread.parallel([lambda i=i: caller.call("echo", "echo", (i,)) for i in range(50)], timeout=10)
        self.assertEqual(results, [[[i], {}] for i in range(50)])

    def test_remote_service_reads_as_a_plain_call(self):
        caller, _, _ = self.pair()
        rpc_services.set_router(lambda service, node: caller)
        self.addCleanup(rpc_services.set_router, None)
        self.assertEqual(rpc_services.remote_service("echo").echo(7, x=8), [[7], {"x": 8}])

    def test_remote_service_without_a_router_is_unavailable(self):
        with self.assertRaisesRegex(rpc_errors.Unavailable, "routes no RPC"):
            rpc_services.remote_service("echo").echo()

    def test_arguments_that_are_not_plain_data_are_refused_before_sending(self):
        caller, _, _ = self.pair()
        with self.assertRaisesRegex(TypeError, "cannot be an RPC value"):
            caller.call("echo", "echo", (object(),))
        self.assertEqual(caller.pending, {})


class ErrorTest(RpcTestCase):

    def assert_error(self, cls, pattern, caller, service, method, *args, **kwargs):
        with self.assertRaisesRegex(cls, pattern) as caught:
            caller.call(service, method, args, kwargs)
        self.assertIs(type(caught.exception), cls)
        return caught.exception

    def test_each_error_kind_comes_back_as_its_exception(self):
        caller, _, _ = self.pair()
        self.assert_error(rpc_errors.NoSuchService, "no service 'nope'", caller, "nope", "x")
        for method in ("nope", "hidden", "_private", "__init__"):
            self.assert_error(rpc_errors.NoSuchMethod, "no exposed method", caller, "echo", method)
        self.assert_error(rpc_errors.NotAllowed, "needs the role admin", caller, "echo", "secret")
        self.assert_error(rpc_errors.BadArguments, "missing a required argument", caller, "echo", "fail")
        self.assert_error(rpc_errors.BadArguments, "unexpected keyword", caller, "echo", "fail", "m", other=1)

    def test_an_rpc_error_raised_by_a_method_keeps_its_kind(self):
        caller, _, _ = self.pair()
        self.assert_error(rpc_errors.Unavailable, "no sol for that", caller, "echo", "relay_unavailable")

    def test_an_application_error_carries_type_and_message_but_no_traceback_for_a_node(self):
        caller, _, _ = self.pair()
        error = self.assert_error(rpc_errors.ApplicationError, "KeyError: 'boom'", caller, "echo", "fail", "boom")
        self.assertEqual(error.type, "KeyError")
        self.assertIsNone(error.remote_traceback)

    def test_an_admin_caller_gets_the_remote_traceback(self):
        caller, _, _ = self.pair(role="admin")
        error = self.assert_error(rpc_errors.ApplicationError, "boom", caller, "echo", "fail", "boom")
        self.assertIn("in fail", error.remote_traceback)
        self.assertIn("Traceback", str(error))
        self.assertEqual(caller.call("echo", "secret"), "for admins")

    def test_a_player_cannot_call_a_node_method(self):
        caller, _, _ = self.pair(role="player")
        self.assert_error(rpc_errors.NotAllowed, "needs the role node", caller, "echo", "gated", 1)
        self.assertEqual(caller.call("echo", "echo", (1,)), [[1], {}])

    def test_a_result_that_is_not_plain_data_is_an_application_error(self):
        caller, _, _ = self.pair()
        self.assert_error(rpc_errors.ApplicationError, "TypeError: object cannot be an RPC value", caller,
                          "echo", "unencodable")


class TimeoutAndUnavailableTest(RpcTestCase):

    def test_no_answer_within_the_timeout_is_rpc_timeout_and_a_late_answer_is_dropped(self):
        caller, echo, _ = self.pair()
        with self.assertRaisesRegex(rpc_errors.RpcTimeout, "no answer from caller within 0.2 s") as caught:
            caller.call("echo", "gated", ("late",), timeout=0.2)
        self.assertIsInstance(caught.exception, TimeoutError)
        self.assertEqual(caller.pending, {})
        echo.gate.set()
        self.assertEqual(caller.call("echo", "echo", ("after",)), [["after"], {}])

    def test_every_waiting_caller_gets_unavailable_when_the_link_closes(self):
        caller, echo, callee = self.pair()
        outcomes = []

        def call():
            try:
                caller.call("echo", "gated", (1,))
            except rpc_errors.Unavailable as e:
                outcomes.append(e)
        for _ in range(3):
            uthread.new(call)
        wait_until(lambda: len(caller.pending) == 3, what="three calls outstanding")
        callee.close()
        wait_until(lambda: len(outcomes) == 3, what="every caller told")
        self.assertIn("closed before the answer came", str(outcomes[0]))
        self.assertIsInstance(outcomes[0], ConnectionError)
        with self.assertRaisesRegex(rpc_errors.Unavailable, "is closed"):
            caller.call("echo", "echo")


class NotificationTest(RpcTestCase):

    def test_a_notification_reaches_the_handler_and_wants_no_answer(self):
        got = []
        caller, _, _ = self.pair(on_notification=lambda service, event, args: got.append((service, event, args)))
        caller.notify("chat", "line", "hello", {"from": 1})
        wait_until(lambda: got, what="the notification delivered")
        self.assertEqual(got, [("chat", "line", ["hello", {"from": 1}])])
        self.assertEqual(caller.call("echo", "echo"), [[], {}])


class HostilePeerTest(RpcTestCase):

    def raw_pair(self):
        """(raw client connection, callee endpoint and its reader's result)."""
        listener = _net.listen(HOST, 0)
        self.addCleanup(listener.close)
        client = _net.connect(HOST, listener.port)
        server = listener.accept(timeout=5)
        self.addCleanup(client.close)
        services = rpc_services.Services()
        services.register(Echo())
        callee = rpc_endpoint.Endpoint(server, services, "node", "callee")
        why = []
        uthread.new(lambda: why.append(callee.run()))
        return client, callee, why

    def test_a_payload_that_does_not_parse_closes_the_link(self):
        client, _, why = self.raw_pair()
        client.sendpacket(b"\xff\xff\xff", kinds_pb2.RPC_CALL)
        wait_until(lambda: why, what="the link closed")
        self.assertIn("does not parse as RpcCall", why[0])
        with self.assertRaises(_net.PeerClosed):
            client.recvpacket(timeout=5)

    def test_a_kind_that_has_no_place_on_an_rpc_link_closes_it(self):
        client, _, why = self.raw_pair()
        client.sendpacket(b"", kinds_pb2.LOGIN)
        wait_until(lambda: why, what="the link closed")
        self.assertIn("message kind 3 has no place", why[0])

    def test_a_kind_with_a_handler_reaches_it_in_order_and_a_refusal_closes_the_link(self):
        listener = _net.listen(HOST, 0)
        self.addCleanup(listener.close)
        client = _net.connect(HOST, listener.port)
        server = listener.accept(timeout=5)
        self.addCleanup(client.close)
        seen = []

        def on_change(payload):
            if payload == b"bad":
                raise rpc_endpoint.ProtocolViolation("refused change")
            seen.append(payload)

        services = rpc_services.Services()
        services.register(Echo())
        callee = rpc_endpoint.Endpoint(server, services, "node", "callee",
                                       handlers={kinds_pb2.SESSION_CHANGE: on_change})
        why = []
        uthread.new(lambda: why.append(callee.run()))
        client.sendpacket(b"one", kinds_pb2.SESSION_CHANGE)
        client.sendpacket(b"two", kinds_pb2.SESSION_CHANGE)
        wait_until(lambda: len(seen) == 2, what="both changes handled")
        self.assertEqual(seen, [b"one", b"two"])
        client.sendpacket(b"bad", kinds_pb2.SESSION_CHANGE)
        wait_until(lambda: why, what="the link closed")
        self.assertEqual(why[0], "refused change")

    def test_bad_values_in_a_well_formed_call_are_bad_arguments_and_the_link_stays(self):
        client, _, why = self.raw_pair()
        call = rpc_pb2.RpcCall(call_id=9, service="echo", method="echo")
        call.args.add()  # a Value with no kind
        client.sendpacket(call.SerializeToString(), kinds_pb2.RPC_CALL)
        kind, payload = client.recvmessage(timeout=5)
        self.assertEqual(kind, kinds_pb2.RPC_ERROR)
        error = rpc_pb2.RpcError.FromString(payload)
        self.assertEqual((error.call_id, error.kind), (9, rpc_pb2.RpcError.BAD_ARGUMENTS))
        self.assertIn("no kind", error.message)
        self.assertEqual(why, [])

    def test_a_call_with_id_zero_gets_no_answer(self):
        client, _, why = self.raw_pair()
        client.sendpacket(rpc_pb2.RpcCall(call_id=0, service="echo", method="nope").SerializeToString(),
                          kinds_pb2.RPC_CALL)
        client.sendpacket(rpc_pb2.RpcCall(call_id=5, service="echo", method="echo").SerializeToString(),
                          kinds_pb2.RPC_CALL)
        kind, payload = client.recvmessage(timeout=5)
        self.assertEqual((kind, rpc_pb2.RpcReply.FromString(payload).call_id), (kinds_pb2.RPC_REPLY, 5))


if __name__ == "__main__":
    unittest.main()
