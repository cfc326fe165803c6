"""Console authentication on a real node: every route refuses a request
without a session, wrong passwords and throttling, CSRF on every change,
roles, expired sessions, the cookie's attributes, the WebSocket's upgrade."""

import base64
import os
import socket
import time
import unittest

import console_support
from console_support import Client, Node

import console_service  # noqa: E402  (server/console/python, on the shard's path)
import support  # noqa: E402

# The only routes that answer without a session: the login page, its own
# script and style (no data in them), and the login itself.
PUBLIC = {("GET", "/login"), ("GET", "/static/login.js"), ("GET", "/static/console.css"), ("POST", "/api/login")}


def setUpModule():
    global node
    support.setUpModule()
    node = Node("--console-session-idle", "2")


def tearDownModule():
    node.stop()
    support.tearDownModule()


def routes():
    """Every route of the console, from its own table."""
    return list(console_service.Console(None, None, None).router)


def websocket_upgrade(port, cookie=None):
    """The status line and headers of a WebSocket handshake, by hand."""
    key = base64.b64encode(os.urandom(16)).decode()
    lines = ["GET /ws HTTP/1.1", "Host: 127.0.0.1:%d" % port, "Upgrade: websocket", "Connection: Upgrade",
             "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
    if cookie:
        lines.append("Cookie: " + cookie)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode()
        rest = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
        if head.startswith("HTTP/1.1 101"):
            s.settimeout(5)
            while len(rest) < 2:
                rest += s.recv(4096)
        return head, rest


class EveryRoute(unittest.TestCase):

    def test_the_public_routes_are_only_the_login_page_its_files_and_the_login(self):
        self.assertEqual({(r.method, r.path) for r in routes() if r.role is None}, PUBLIC)

    def test_every_other_route_refuses_a_request_without_a_session(self):
        checked = 0
        for route in routes():
            if (route.method, route.path) in PUBLIC:
                continue
            with self.subTest(route=(route.method, route.path)):
                answer = Client(node.port).request(route.method, route.path, {} if route.method == "POST" else None)
                if route.page:
                    self.assertEqual((answer.status, answer.header("Location")), (303, "/login"))
                else:
                    self.assertEqual(answer.status, 401, answer.body)
                    self.assertIn("log in first", answer.json()["error"])
                checked += 1
        self.assertGreaterEqual(checked, 15)

    def test_every_route_refuses_a_forged_session_cookie(self):
        for route in routes():
            if (route.method, route.path) in PUBLIC:
                continue
            with self.subTest(route=(route.method, route.path)):
                answer = Client(node.port).request(route.method, route.path,
                                                   {} if route.method == "POST" else None,
                                                   headers={"Cookie": "shard_console=forged"})
                self.assertIn(answer.status, (303, 401))

    def test_the_websocket_refuses_an_upgrade_without_a_session(self):
        head, _ = websocket_upgrade(node.port)
        self.assertTrue(head.startswith("HTTP/1.1 303") or head.startswith("HTTP/1.1 401"), head)

    def test_the_websocket_pushes_statistics_to_a_logged_in_page(self):
        client = Client(node.port)
        client.login("view")
        head, first = websocket_upgrade(node.port, client.cookie)
        self.assertTrue(head.startswith("HTTP/1.1 101"), head)
        self.assertEqual(first[0], 0x81)  # a final text frame: the push


class Logins(unittest.TestCase):

    def test_the_login_sets_an_http_only_strict_cookie_and_gives_a_csrf_token(self):
        client = Client(node.port)
        answer = client.login("view")
        self.assertEqual(answer.status, 200)
        cookie = answer.header("Set-Cookie")
        self.assertIn("HttpOnly", cookie)
        self.assertIn("SameSite=Strict", cookie)
        self.assertEqual(answer.json()["role"], "viewer")
        self.assertGreaterEqual(len(answer.json()["csrf"]), 32)
        self.assertEqual(client.get("/api/stats").status, 200)

    def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(self):
        for name, password in (("view", "nope"), ("nobody", "pw-view")):
            answer = Client(node.port).request("POST", "/api/login", {"name": name, "password": password})
            self.assertEqual(answer.status, 401)
            self.assertEqual(answer.json()["error"], "wrong name or password")
            self.assertIsNone(answer.header("Set-Cookie"))

    def test_logins_of_an_account_are_throttled_after_five_failures(self):
        client = Client(node.port)
        for _ in range(5):
            self.assertEqual(client.request("POST", "/api/login", {"name": "locked", "password": "x"}).status, 401)
        throttled = client.request("POST", "/api/login",
                                   {"name": "locked", "password": console_support.ACCOUNTS["locked"][1]})
        self.assertEqual(throttled.status, 429)
        self.assertIn("too many login attempts", throttled.json()["error"])

    def test_a_name_that_is_not_a_string_is_refused_clearly(self):
        answer = Client(node.port).request("POST", "/api/login", {"name": ["view"], "password": "pw-view"})
        self.assertEqual(answer.status, 400)
        self.assertEqual(answer.json()["error"], "name and password must be strings")

    def test_a_body_that_is_not_json_is_refused_clearly(self):
        answer = Client(node.port).request("POST", "/api/login", raw_body=b"name=view")
        self.assertEqual(answer.status, 400)
        self.assertIn("not JSON", answer.json()["error"])

    def test_a_session_ends_after_its_idle_time(self):
        client = Client(node.port)
        client.login("view")
        self.assertEqual(client.get("/api/session").status, 200)
        time.sleep(2.5)  # the node runs with --console-session-idle 2
        self.assertEqual(client.get("/api/session").status, 401)

    def test_logout_ends_the_session(self):
        client = Client(node.port)
        client.login("view")
        self.assertEqual(client.post("/api/logout").status, 200)
        self.assertEqual(client.get("/api/stats").status, 401)


class Changes(unittest.TestCase):

    def setUp(self):
        self.client = Client(node.port)
        self.assertEqual(self.client.login("adm").status, 200)

    def test_a_change_without_the_csrf_token_is_refused_and_not_made(self):
        before = self.client.get("/api/stats").json()["fps_target"]
        for headers in ({}, {"X-CSRF-Token": "wrong"}):
            answer = self.client.post("/api/setting", {"name": "fps", "value": before + 7}, csrf=False,
                                      headers=headers)
            self.assertEqual(answer.status, 403)
            self.assertIn("CSRF", answer.json()["error"])
        self.assertEqual(self.client.get("/api/stats").json()["fps_target"], before)

    def test_every_change_route_needs_the_csrf_token(self):
        for route in routes():
            if route.change:
                with self.subTest(route=route.path):
                    answer = self.client.post(route.path, {}, csrf=False)
                    self.assertEqual(answer.status, 403, answer.body)

    def test_a_viewer_cannot_change_and_an_operator_cannot_run_python(self):
        viewer = Client(node.port)
        viewer.login("view")
        answer = viewer.post("/api/setting", {"name": "fps", "value": 31})
        self.assertEqual(answer.status, 403)
        self.assertIn("needs the operator role", answer.json()["error"])
        operator = Client(node.port)
        self.assertEqual(operator.login("ops").status, 200)
        answer = operator.post("/api/exec", {"code": "1"})
        self.assertEqual(answer.status, 403)
        self.assertIn("needs the admin role", answer.json()["error"])


if __name__ == "__main__":
    unittest.main()
