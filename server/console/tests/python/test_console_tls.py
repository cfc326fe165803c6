"""The console over TLS (the node's certificate: ops/devcert.sh's here): the
page and the API answer over TLS only, the session cookie is Secure, the CLI
talks TLS with --tls-ca, and a plain-HTTP client gets nothing."""

import os
import socket
import ssl
import subprocess
import tempfile
import unittest

from console_support import ACCOUNTS, Client, Node

import support  # noqa: E402
from support import SHARD_BINARY  # noqa: E402

CERTS = os.path.join(os.path.dirname(os.path.dirname(SHARD_BINARY)), "devcert")  # made by the build
CA = os.path.join(CERTS, "dev.crt")


def setUpModule():
    global node
    support.setUpModule()
    node = Node("--console-tls-cert", CA, "--console-tls-key", os.path.join(CERTS, "dev.key"), metrics=False)


def tearDownModule():
    node.stop()
    support.tearDownModule()


class Tls(unittest.TestCase):

    def test_the_log_names_https(self):
        self.assertIn("admin console on https://127.0.0.1:%d/" % node.port, node.output())

    def test_login_and_api_over_tls_with_a_secure_cookie(self):
        client = Client(node.port, tls=ssl.create_default_context(cafile=CA))
        answer = client.login("ops")
        self.assertEqual(answer.status, 200, answer.body)
        self.assertIn("; Secure", answer.header("Set-Cookie"))
        self.assertEqual(client.get("/api/stats").json()["strategy"], "main_loop")
        self.assertEqual(client.post("/api/setting", {"name": "fps", "value": 40}).json()["value"], 40.0)

    def test_a_plain_http_client_gets_no_answer(self):
        with socket.create_connection(("127.0.0.1", node.port), timeout=10) as s:
            s.sendall(b"GET /login HTTP/1.1\r\nHost: a\r\n\r\n")
            data = b""
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            except (ConnectionResetError, socket.timeout):
                pass
        self.assertNotIn(b"HTTP/1.1", data)
        self.assertEqual(Client(node.port, tls=ssl.create_default_context(cafile=CA)).get("/login").status, 200)

    def test_a_client_that_does_not_trust_the_certificate_is_refused_by_itself(self):
        with self.assertRaises(ssl.SSLCertVerificationError):
            Client(node.port, tls=ssl.create_default_context()).get("/login")

    def test_a_missing_certificate_stops_the_start_naming_the_files(self):
        with self.assertRaises(AssertionError) as failed:
            Node("--console-tls-cert", "/nonexistent.crt", "--console-tls-key", "/nonexistent.key", metrics=False)
        self.assertIn("cannot start the console: console: cannot serve on 127.0.0.1:0 with TLS "
                      "(certificate /nonexistent.crt, key /nonexistent.key)", str(failed.exception))

    def test_the_cli_over_tls(self):
        with tempfile.NamedTemporaryFile("w", suffix=".pw") as f:
            f.write(ACCOUNTS["view"][1] + "\n")
            f.flush()
            result = subprocess.run([SHARD_BINARY, "console", "--node", "127.0.0.1:%d" % node.port, "--tls-ca", CA,
                                     "--user", "view", "--password-file", f.name, "strategy"],
                                    capture_output=True, text=True, timeout=60)
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "main_loop"), result.stderr)


if __name__ == "__main__":
    unittest.main()
