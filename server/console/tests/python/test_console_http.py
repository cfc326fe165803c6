"""The console's HTTP server (_console on an IO thread) against hostile or
odd clients: size limits answered with 413/431 and a closed connection,
garbage, a client that never finishes its request, keep-alive; the node
keeps serving through all of it."""

import socket
import unittest

from console_support import Client, Node

import support  # noqa: E402


def setUpModule():
    global node
    support.setUpModule()
    node = Node(metrics=False)


def tearDownModule():
    node.stop()
    support.tearDownModule()


def exchange(data, timeout=10):
    """Sends raw bytes; everything the server answers until it closes (or the timeout)."""
    with socket.create_connection(("127.0.0.1", node.port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return got


class Limits(unittest.TestCase):

    def tearDown(self):
        self.assertEqual(Client(node.port).get("/login").status, 200)  # still serving

    def test_a_body_over_64_kib_is_answered_413_and_the_connection_closed(self):
        body = b"x" * (64 * 1024 + 1)
        answer = exchange(b"POST /api/login HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        self.assertTrue(answer.startswith(b"HTTP/1.1 413"), answer[:100])

    def test_headers_over_8_kib_are_answered_431(self):
        answer = exchange(b"GET /login HTTP/1.1\r\nHost: a\r\nX-Big: " + b"y" * 9000 + b"\r\n\r\n")
        self.assertTrue(answer.startswith(b"HTTP/1.1 431"), answer[:100])

    def test_garbage_is_dropped_without_an_answer(self):
        self.assertEqual(exchange(b"\x16\x03\x01\x02\x00garbage\r\n\r\n"), b"")

    def test_a_header_line_break_cannot_be_injected_into_an_answer(self):
        answer = Client(node.port).request("GET", "/api/nothing%0d%0aSet-Cookie:%20x=1")
        self.assertEqual(answer.status, 404)
        self.assertIsNone(answer.header("Set-Cookie"))

    def test_a_target_with_too_many_query_fields_is_refused_and_the_console_goes_on(self):
        answer = Client(node.port).get("/api/logs?" + "&".join("f%d=1" % i for i in range(50)))
        self.assertEqual(answer.status, 400)
        self.assertIn("bad request", answer.json()["error"])

    def test_two_requests_on_one_connection_are_both_answered(self):
        request = b"GET /login HTTP/1.1\r\nHost: a\r\n\r\n"
        answer = exchange(request + request.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
        self.assertEqual(answer.count(b"HTTP/1.1 200"), 2)


if __name__ == "__main__":
    unittest.main()
