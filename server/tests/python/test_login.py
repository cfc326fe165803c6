"""Logins on a real `shard proxy` process (TLS on its client port, the dev
certificate) against the private MariaDB (ctest's `mariadb` fixture), with
a client that speaks the wire through `_net.connect(tls=True)` and the
classes stock protoc generates: good and bad logins, throttling, one session
per account (also across two proxies), the idle timeout from the live
settings, hostile packets before and after the login. Every wait is bounded."""

import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "engine", "tests", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "db", "tests", "python"))

import _net  # noqa: E402
import accounts  # noqa: E402
import client_sessions  # noqa: E402
import cluster_directory  # noqa: E402
import db  # noqa: E402
import handshake_pb2  # noqa: E402
import rpc_services  # noqa: E402
import session_pb2  # noqa: E402
import sol_links  # noqa: E402
import stackless  # noqa: E402
import support  # noqa: E402
import uthread  # noqa: E402
from cluster_support import CA, LOGIN, WAIT_S, Cluster  # noqa: E402
from support import SHARD_BINARY, StacklessTestCase, run_in_tasklet  # noqa: E402

USERS = {"alice": "alice-pw", "bob": "bob-pw", "dave": "dave-pw", "erin": "erin-pw", "frank": "frank-pw",
         "gina": "gina-pw", "hank": "hank-pw"}

# 200 fps: the nodes' database statements each wait for a frame (cluster_support).
cluster = Cluster("shard_test_login", {"proxy": {"login_timeout": 2, "logins_per_address": 1000}, "loop": {"fps": 200}})


def setUpModule():
    cluster.set_up()
    for name, password in USERS.items():
        how, value = run_in_tasklet(accounts.create, name, password)
        assert how == "ok", value


def tearDownModule():
    cluster.tear_down()


def start_proxy(name, *args):
    """A `shard proxy` with its client port (from the directory) as `.port`."""
    proxy = cluster.start("proxy", name, *args)
    proxy.port = proxy.registered()["port"]
    return proxy


def dial(proxy, tls=True):
    options = {"tls": True, "tls_ca": CA} if tls else {}
    return _net.connect("127.0.0.1", proxy.port, timeout=WAIT_S, **options)


def login(proxy, name, password, tls=True):
    """(connection, LoginReply)."""
    connection = dial(proxy, tls)
    request = session_pb2.LoginRequest(user_name=name, credential=password.encode(), client_version="test")
    connection.sendpacket(request.SerializeToString(), kind=LOGIN)
    return connection, session_pb2.LoginReply.FromString(connection.recvpacket(timeout=WAIT_S))


def closed_with(connection):
    """The Close reason the proxy sent (None if none came) once the connection is closed."""
    reason = None
    try:
        while True:
            reason = handshake_pb2.Close.FromString(connection.recvpacket(timeout=WAIT_S)).reason
    except _net.error:
        return reason


class LoginTestCase(StacklessTestCase):
    deadline_s = 180

    def proxy(self, name, *args):
        proxy = start_proxy(name, *args)
        self.addCleanup(proxy.stop)
        return proxy


class Login(LoginTestCase):

    @classmethod
    def setUpClass(cls):
        cls.shared = start_proxy("proxy-login")

    @classmethod
    def tearDownClass(cls):
        cls.shared.stop()

    def test_a_good_login_gets_a_session_id_and_its_attributes_and_a_row(self):
        connection, reply = login(self.shared, "alice", "alice-pw")
        self.addCleanup(connection.close)
        self.assertTrue(reply.ok, reply.reason)
        self.assertTrue(0 < reply.session_id < 1 << 48)
        account_id = db.query("SELECT id FROM accounts WHERE name = 'alice'")[0][0]
        self.assertEqual(reply.user_id, account_id)
        self.assertEqual(reply.attributes["user_name"].string_value, "alice")
        self.assertEqual(reply.attributes["role"].string_value, "player")
        self.assertTrue(reply.attributes["solar_system_id"].HasField("null_value"))
        self.assertIsNotNone(connection.negotiated["tls"])
        self.assertEqual(db.query("SELECT session_id FROM client_sessions WHERE account_id = ?", account_id),
                         [(reply.session_id,)])

    def test_a_wrong_password_or_unknown_account_is_refused_alike_and_logged_apart(self):
        for name, password, logged in (("bob", "nope", "wrong password"), ("nobody", "x", "unknown account")):
            with self.subTest(name=name):
                connection, reply = login(self.shared, name, password)
                self.assertFalse(reply.ok)
                self.assertEqual(reply.reason, "wrong user name or password")
                self.assertEqual(reply.session_id, 0)
                self.assertIsNone(closed_with(connection))  # closed after the reply
                self.shared.wait_log(r"login of '%s' refused: %s" % (name, logged))

    def test_a_second_login_ends_the_first_with_a_reason(self):
        first, one = login(self.shared, "frank", "frank-pw")
        second, two = login(self.shared, "frank", "frank-pw")
        self.addCleanup(second.close)
        self.assertTrue(one.ok and two.ok)
        self.assertNotEqual(one.session_id, two.session_id)
        self.assertEqual(closed_with(first), "logged in again from 127.0.0.1")
        self.assertEqual(db.query("SELECT session_id FROM client_sessions WHERE account_id = ?", two.user_id),
                         [(two.session_id,)])
        second.sendpacket(b"still there?", kind=LOGIN)  # the second is live: the proxy reads it (and ends it: not RPC)
        self.assertIsNone(closed_with(second))
        self.shared.wait_log(r"session %d .*: message kind 3 has no place on an RPC link; closing" % two.session_id)

    def test_a_plain_client_is_refused_by_the_tls_port(self):
        with self.assertRaisesRegex(_net.HandshakeFailed, "requires TLS"):
            dial(self.shared, tls=False)

    def test_garbage_before_the_login_closes_that_client_only(self):
        for garbage, logged in ((b"\xff\xff\xff\xff", "not a LoginRequest"),
                                (b"\x0a\x00", "without user_name or credential"),
                                (b"x" * 5000, "login packet of 5000 bytes")):
            with self.subTest(logged=logged):
                connection = dial(self.shared)
                connection.sendpacket(garbage)
                self.assertIsNone(closed_with(connection))
                self.shared.wait_log(logged)
        connection = dial(self.shared)  # silent: closed after proxy.login_timeout
        self.assertIsNone(closed_with(connection))
        self.shared.wait_log(r"no login within 2 s")
        connection, reply = login(self.shared, "gina", "gina-pw")  # and the proxy serves the next
        self.addCleanup(connection.close)
        self.assertTrue(reply.ok, reply.reason)
        self.assertIsNone(self.shared.proc.poll())

    def test_the_idle_timeout_follows_the_live_setting(self):
        early, before = login(self.shared, "bob", "bob-pw")  # logged in under the default (120 s)
        self.assertTrue(before.ok, before.reason)
        db.execute("REPLACE INTO settings (name, value) VALUES ('client_idle_timeout_s', '0.5')")
        self.addCleanup(db.execute, "DELETE FROM settings WHERE name = 'client_idle_timeout_s'")
        self.assertEqual(closed_with(early), "idle for 0.5 s")
        self.shared.wait_log(r"setting client_idle_timeout_s: 120\.0 -> 0\.5")
        connection, reply = login(self.shared, "bob", "bob-pw")
        self.assertTrue(reply.ok, reply.reason)
        started = time.monotonic()
        self.assertEqual(closed_with(connection), "idle for 0.5 s")
        self.assertGreaterEqual(time.monotonic() - started, 0.4)
        # The proxy closes the client first and then deletes the session's row.
        support.wait_until(lambda: db.query("SELECT COUNT(*) FROM client_sessions WHERE account_id = ?",
                                            reply.user_id) == [(0,)], what="the idle session's row deleted")


class SessionsOfOneProxy(StacklessTestCase):
    """ClientSessions in this process, on the test database."""

    def proxy_sessions(self, connections):
        """A registered proxy's ClientSessions and `connections` accepted
        server ends of loopback connections, closed after the test."""
        node_id = cluster_directory.register("proxy", "proxy-in-test", "127.0.0.1", 1, "test", os.getpid(), 5)
        self.addCleanup(cluster_directory.mark_gone, node_id, cluster_directory.STOPPED)
        sessions = client_sessions.ClientSessions(node_id, sol_links.SolLinks(1, rpc_services.Services()))
        listener = _net.listen("127.0.0.1", 0)
        self.addCleanup(listener.close)
        servers = []
        for _ in range(connections):
            client = _net.connect("127.0.0.1", listener.port, timeout=WAIT_S)
            self.addCleanup(client.close)
            servers.append(listener.accept(timeout=WAIT_S))
        return sessions, servers

    def test_a_second_login_ends_the_first_before_its_row_changes(self):
        # Else the proxy's sweep, reading the row in between, ended the first
        # session as "logged in again elsewhere" (seen under load).
        sessions, servers = self.proxy_sessions(2)
        account = db.query("SELECT id FROM accounts WHERE name = 'hank'")[0][0]
        how, first = run_in_tasklet(sessions.begin, account, "hank", "127.0.0.1", servers[0])
        self.assertEqual(how, "ok", first)
        second = []
        login = uthread.new(lambda: second.append(sessions.begin(account, "hank", "127.0.0.2", servers[1])))
        stackless.schedule()  # the second login runs until it waits (on the database)
        self.assertEqual(first.ended, "logged in again from 127.0.0.2")
        while login.alive:
            uthread.Sleep(0.01)
        self.addCleanup(run_in_tasklet, sessions.end, second[0], "test over")
        self.assertEqual(db.query("SELECT session_id FROM client_sessions WHERE account_id = ?", account),
                         [(second[0].session_id,)])


    def test_a_login_written_while_the_sweep_reads_is_not_ended_as_replaced(self):
        sessions, (server,) = self.proxy_sessions(1)
        account = db.query("SELECT id FROM accounts WHERE name = 'hank'")[0][0]
        began = []
        real_query = client_sessions.db.query

        def sweep_read_then_login(*args):
            rows = real_query(*args)  # what the sweep read; the login below commits after it
            began.append(sessions.begin(account, "hank", "127.0.0.1", server))
            return rows

        client_sessions.db.query = sweep_read_then_login
        try:
            how, error = run_in_tasklet(sessions.check)
        finally:
            client_sessions.db.query = real_query
        self.assertEqual(how, "ok", error)
        self.addCleanup(run_in_tasklet, sessions.end, began[0], "test over")
        self.assertIsNone(began[0].ended)
        self.assertIs(sessions.by_id.get(began[0].session_id), began[0])


class ManyProxies(LoginTestCase):

    def test_throttling_per_account_then_per_address(self):
        proxy = self.proxy("proxy-throttle", "--proxy.logins_per_address", "5", "--proxy.failures_per_account", "2")
        for _ in range(2):
            _, reply = login(proxy, "dave", "wrong")
            self.assertEqual(reply.reason, "wrong user name or password")
        _, reply = login(proxy, "dave", "dave-pw")  # the right password, but the account is throttled
        self.assertFalse(reply.ok)
        self.assertRegex(reply.reason, r"too many failed logins for this account; retry in \d+ s")
        for _ in range(2):  # attempts 4 and 5 from this address: another account goes on
            connection, reply = login(proxy, "erin", "erin-pw")
            self.assertTrue(reply.ok, reply.reason)
        connection.close()
        _, reply = login(proxy, "erin", "erin-pw")  # the 6th
        self.assertFalse(reply.ok)
        self.assertRegex(reply.reason, r"too many login attempts from 127\.0\.0\.1; retry in \d+ s")
        proxy.wait_log(r"login of 'erin' refused: throttled")

    def test_a_proxy_without_a_certificate_does_not_start_unless_tls_is_off(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARD_DB_")}
        done = subprocess.run([SHARD_BINARY, "proxy", "--config", cluster.prefs_path, "--node.name", "proxy-nocert",
                               "--proxy.tls_cert", ""], capture_output=True, text=True, env=env, timeout=WAIT_S)
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("proxy.tls is 'required' but proxy.tls_cert or proxy.tls_key is not set", done.stderr)
        plain = self.proxy("proxy-plain", "--proxy.tls", "off", "--proxy.tls_cert", "")
        connection, reply = login(plain, "gina", "gina-pw", tls=False)
        self.addCleanup(connection.close)
        self.assertTrue(reply.ok, reply.reason)
        self.assertIsNone(connection.negotiated["tls"])

    def test_a_proxy_whose_key_is_not_a_key_exits_1_saying_why(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARD_DB_")}
        done = subprocess.run([SHARD_BINARY, "proxy", "--config", cluster.prefs_path, "--node.name", "proxy-badkey",
                               "--proxy.tls_key", cluster.prefs_path], capture_output=True, text=True, env=env,
                              timeout=WAIT_S)
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("cannot start the proxy node: tls_key %s" % cluster.prefs_path, done.stderr)

    def test_a_login_on_another_proxy_ends_the_session_on_the_first(self):
        a, b = self.proxy("proxy-a"), self.proxy("proxy-b")
        first, one = login(a, "alice", "alice-pw")
        second, two = login(b, "alice", "alice-pw")
        self.addCleanup(second.close)
        self.assertTrue(one.ok and two.ok)
        self.assertEqual(closed_with(first), "logged in again elsewhere")
        b.stop()  # a clean stop releases its sessions' rows
        self.assertEqual(db.query("SELECT COUNT(*) FROM client_sessions WHERE account_id = ?", two.user_id), [(0,)])


if __name__ == "__main__":
    unittest.main()
