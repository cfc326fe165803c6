"""The handshake on _net's connections (docs/protocol.md, "Handshake"): the codec
negotiated per connection, TLS with the development certificate, every failure
a _net.HandshakeFailed with the reason for the caller (and a logged line on
the side that saw it), and a third-party client written only from the docs
and protoc's classes talking to a _net server.

The certificates come from ops/devcert.sh, which the build runs into
build/devcert (and -other: another self-signed one; -expired).
"""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "engine", "tests", "python"))

import _net  # noqa: E402
import support  # noqa: E402
from support import StacklessTestCase, SHARD_BINARY, run_child, wait_until  # noqa: E402

HOST = "127.0.0.1"
REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
BUILD = os.path.dirname(os.path.dirname(SHARD_BINARY))
CERTS = os.path.join(BUILD, "devcert")
CERT, KEY = os.path.join(CERTS, "dev.crt"), os.path.join(CERTS, "dev.key")
OTHER_CA = os.path.join(CERTS + "-other", "dev.crt")
EXPIRED = os.path.join(CERTS + "-expired", "dev.crt"), os.path.join(CERTS + "-expired", "dev.key")
PROTOS = os.path.join(BUILD, "netproto", "python")
THIRD_PARTY = os.path.join(REPO, "tools", "tests", "third_party_client.py")
SYSTEM_PYTHON = "/usr/bin/python3.11"


def setUpModule():
    support.setUpModule()


def tearDownModule():
    import gc
    gc.collect()
    wait_until(lambda: _net._counts() == {"connections": 0, "listeners": 0, "objects": 0},
               what="connections and listeners released: %r" % (_net._counts(),))
    support.tearDownModule()


class HandshakeTestCase(StacklessTestCase):

    def listen(self, **kwargs):
        listener = _net.listen(HOST, 0, **kwargs)
        self.addCleanup(listener.close)
        return listener

    def pair(self, listener, **kwargs):
        client = _net.connect(HOST, listener.port, timeout=10, **kwargs)
        self.addCleanup(client.close)
        server = listener.accept(timeout=10)
        self.addCleanup(server.close)
        return client, server

    def assert_round_trip(self, client, server, payload=b"ping" * 1000):
        client.sendpacket(payload)
        self.assertEqual(server.recvpacket(timeout=10), payload)
        server.sendpacket(payload[::-1])
        self.assertEqual(client.recvpacket(timeout=10), payload[::-1])


class CodecNegotiationTest(HandshakeTestCase):

    def test_each_connection_gets_the_codec_both_sides_allow(self):
        cases = [
            ({}, {}, "snappy"),                                       # both offer snappy first
            ({}, {"codec": "zlib"}, "zlib"),                          # the client offers only zlib
            ({"codec": ("zlib", "snappy")}, {}, "zlib"),              # the server's preference wins
            ({}, {"codec": "none"}, "none"),                          # the client offers nothing
            ({"codec": "none"}, {"codec": ("snappy", "zlib")}, "none"),
        ]
        for server_kwargs, client_kwargs, expected in cases:
            with self.subTest(server=server_kwargs, client=client_kwargs):
                listener = self.listen(compress_threshold=64, **server_kwargs)
                client, server = self.pair(listener, **client_kwargs)
                self.assertEqual(client.negotiated["codec"], expected)
                self.assertEqual(server.negotiated["codec"], expected)
                self.assertEqual(client.negotiated["compress_threshold"], 64)
                self.assertIsNone(client.negotiated["tls"])
                self.assertEqual(server.negotiated["peer_role"], "client")
                self.assert_round_trip(client, server)
                compressed = client.stats()["bytes_out"] < 4000
                self.assertEqual(compressed, expected != "none", client.stats())

    def test_one_listener_negotiates_each_connection_on_its_own(self):
        listener = self.listen()
        snappy, s1 = self.pair(listener)
        zlib_client, s2 = self.pair(listener, codec="zlib")
        self.assertEqual((s1.negotiated["codec"], s2.negotiated["codec"]), ("snappy", "zlib"))
        self.assert_round_trip(snappy, s1)
        self.assert_round_trip(zlib_client, s2)

    def test_node_to_node_links_say_who_is_speaking(self):
        listener = self.listen(role="sol", node_id=7)
        proxy, sol = self.pair(listener, role="proxy", node_id=3)
        self.assertEqual((proxy.negotiated["peer_role"], proxy.negotiated["peer_node_id"]), ("sol", 7))
        self.assertEqual((sol.negotiated["peer_role"], sol.negotiated["peer_node_id"]), ("proxy", 3))
        self.assert_round_trip(proxy, sol)
        with self.assertRaises(ValueError):
            _net.connect(HOST, 1, role="admin")
        with self.assertRaises(ValueError):
            _net.listen(HOST, 0, node_id=1 << 16)

    def test_bad_codec_names_are_value_errors(self):
        with self.assertRaises(ValueError):
            _net.connect(HOST, 1, codec="lz4")
        with self.assertRaises(ValueError):
            _net.listen(HOST, 0, codec=["snappy", "brotli"])


class TlsTest(HandshakeTestCase):

    def tls_listener(self, cert=CERT, key=KEY, **kwargs):
        return self.listen(tls_cert=cert, tls_key=key, **kwargs)

    def test_a_round_trip_over_tls_with_the_development_certificate(self):
        listener = self.tls_listener()
        client, server = self.pair(listener, tls=True, tls_ca=CERT)
        self.assertTrue(client.negotiated["tls"].startswith("TLSv1.3 "), client.negotiated)
        self.assertEqual(server.negotiated["tls"], client.negotiated["tls"])
        self.assertEqual(client.negotiated["codec"], "snappy")  # compressed inside TLS
        self.assert_round_trip(client, server)
        self.assert_round_trip(client, server, os.urandom(200000))

    def test_handshake_failed_is_a_net_error(self):
        self.assertTrue(issubclass(_net.HandshakeFailed, _net.error))

    def test_an_unknown_ca_fails_the_handshake(self):
        listener = self.tls_listener()
        with self.assertRaises(_net.HandshakeFailed) as caught:
            _net.connect(HOST, listener.port, timeout=10, tls=True, tls_ca=OTHER_CA)
        self.assertIn("certificate verify failed", str(caught.exception))
        self.assertIn("self-signed certificate", str(caught.exception))
        wait_until(lambda: listener.stats()["open"] == 0, what="the server let the connection go")

    def test_an_expired_certificate_fails_the_handshake(self):
        listener = self.tls_listener(*EXPIRED)
        with self.assertRaises(_net.HandshakeFailed) as caught:
            _net.connect(HOST, listener.port, timeout=10, tls=True, tls_ca=EXPIRED[0])
        self.assertIn("certificate has expired", str(caught.exception))

    def test_a_self_signed_certificate_is_not_trusted_by_the_system_cas(self):
        listener = self.tls_listener()
        with self.assertRaises(_net.HandshakeFailed) as caught:
            _net.connect(HOST, listener.port, timeout=10, tls=True)
        self.assertIn("self-signed certificate", str(caught.exception))
        # Unless verification is off (development only).
        client, server = self.pair(listener, tls=True, tls_verify=False)
        self.assert_round_trip(client, server)

    def test_a_plain_client_to_a_tls_listener_is_refused(self):
        listener = self.tls_listener()
        with self.assertRaises(_net.HandshakeFailed) as caught:
            _net.connect(HOST, listener.port, timeout=10)
        self.assertEqual(str(caught.exception), "refused by the server: server requires TLS")
        wait_until(lambda: listener.stats()["handshake_failed"] == 1, what="the refusal counted")
        # tls_required=False lets it in, in the clear.
        open_listener = self.tls_listener(tls_required=False)
        client, server = self.pair(open_listener)
        self.assertIsNone(client.negotiated["tls"])
        self.assert_round_trip(client, server)

    def test_a_tls_client_is_not_downgraded_by_a_plain_server(self):
        listener = self.listen()
        with self.assertRaises(_net.HandshakeFailed) as caught:
            _net.connect(HOST, listener.port, timeout=10, tls=True, tls_ca=CERT)
        self.assertIn("client requires TLS, server has none", str(caught.exception))

    def test_tls_arguments_are_checked_at_the_call(self):
        with self.assertRaises(ValueError):
            _net.listen(HOST, 0, tls_cert=CERT)
        with self.assertRaisesRegex(ValueError, "no-such.pem"):
            _net.listen(HOST, 0, tls_cert="/no-such.pem", tls_key=KEY)
        with self.assertRaises(ValueError):
            _net.listen(HOST, 0, tls_required=True)
        with self.assertRaises(ValueError):
            _net.connect(HOST, 1, tls_ca=CERT)  # without tls=True


class HostilePeerTest(HandshakeTestCase):

    def test_garbage_is_cut_off_and_the_listener_and_other_connections_go_on(self):
        listener = self.listen()
        good_client, good_server = self.pair(listener)
        raw = socket.create_connection((HOST, listener.port))
        self.addCleanup(raw.close)
        raw.sendall(b"GET / HTTP/1.1\r\nHost: shard\r\n\r\n")
        wait_until(lambda: listener.stats()["handshake_failed"] == 1, what="the garbage refused")
        raw.settimeout(5)
        self.assertEqual(raw.recv(100), b"")  # closed on it
        self.assert_round_trip(good_client, good_server)
        client, server = self.pair(listener)  # still accepting
        self.assert_round_trip(client, server)

    def test_a_client_that_never_finishes_is_cut_off_after_the_handshake_timeout(self):
        listener = self.listen(handshake_timeout=0.3)
        raw = socket.create_connection((HOST, listener.port))
        self.addCleanup(raw.close)
        start = time.monotonic()
        wait_until(lambda: listener.stats()["handshake_failed"] == 1, what="the silent client cut off")
        self.assertLess(time.monotonic() - start, 5)
        self.assertEqual(listener.stats()["open"], 0)
        client, server = self.pair(listener)
        self.assert_round_trip(client, server)

    def test_a_server_that_never_answers_fails_the_connect(self):
        mute = socket.socket()
        self.addCleanup(mute.close)
        mute.bind((HOST, 0))
        mute.listen()  # the kernel completes the connection; nobody answers the Hello
        with self.assertRaises(_net.HandshakeFailed) as caught:
            _net.connect(HOST, mute.getsockname()[1], handshake_timeout=0.3)
        self.assertEqual(str(caught.exception), "timed out after 300 ms")

    def test_the_reason_is_logged_with_the_peer_address(self):
        script = textwrap.dedent("""
            import socket, time, _net
            listener = _net.listen("127.0.0.1", 0)
            raw = socket.create_connection(("127.0.0.1", listener.port))
            raw.sendall(b"\\x16\\x03\\x01\\x02\\x00 a TLS ClientHello first")
            for _ in range(1000):
                if listener.stats()["handshake_failed"]:
                    break
                time.sleep(0.01)
            print("port", raw.getsockname()[1])
        """)
        child = run_child([SHARD_BINARY, "python", "-c", script])
        self.assertEqual(child.returncode, 0, child.stderr)
        port = child.stdout.split()[-1]
        self.assertRegex(child.stderr, r"netproto: handshake with 127\.0\.0\.1:%s failed: handshake frame length "
                                       r"\d+ out of range 12\.\.4096" % port)


@unittest.skipUnless(os.path.exists(SYSTEM_PYTHON), "needs " + SYSTEM_PYTHON)
class ThirdPartyClientTest(HandshakeTestCase):
    """tools/tests/third_party_client.py: protoc's classes, sockets and ssl only."""

    def serve_one(self, listener, *client_args):
        client = subprocess.Popen([SYSTEM_PYTHON, THIRD_PARTY, "--port", str(listener.port), "--protos", PROTOS,
                                   *client_args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            connection = listener.accept(timeout=20)
            self.addCleanup(connection.close)
            connection.sendpacket(connection.recvpacket(timeout=20))  # the Notification, echoed
            out, err = client.communicate(timeout=20)
        finally:
            if client.poll() is None:
                client.kill()
                client.wait()
        self.assertEqual(client.returncode, 0, err)
        result = json.loads(out)
        self.assertEqual(result["compression"], 2)  # zlib: it offers nothing else
        self.assertLess(result["sent_bytes"], result["notification_bytes"] / 10)
        self.assertEqual(connection.negotiated["codec"], "zlib")
        self.assertEqual(connection.stats()["packets_in"], 1)  # the heartbeat was answered on the IO thread
        return result, connection

    def test_plain(self):
        result, connection = self.serve_one(self.listen())
        self.assertIsNone(result["tls"])
        self.assertIsNone(connection.negotiated["tls"])

    def test_tls(self):
        result, connection = self.serve_one(self.listen(tls_cert=CERT, tls_key=KEY), "--tls-ca", CERT)
        self.assertEqual(result["tls"], "TLSv1.3")
        self.assertTrue(connection.negotiated["tls"].startswith("TLSv1.3 "))


if __name__ == "__main__":
    unittest.main()
