"""The cluster directory with real nodes: `shard sol` and `shard proxy`
processes on loopback addresses (127.0.0.1, .2, .3: nothing assumes one
address), configured by a prefs.ini, against the private MariaDB (ctest's
`mariadb` fixture). What is checked is what the directory says (the test
reads the database) and what the nodes log.

Times are short (heartbeat 0.25 s, node timeout 5 s: 20 beats, so a node or
database stalled by a loaded 2-core machine is not taken for a dead one) and
every wait is bounded but generous. A wait that fails prints every node's log
and the directory.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "engine", "tests", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "db", "tests", "python"))

import db  # noqa: E402
import db_migrate  # noqa: E402
import support  # noqa: E402
from dbsupport import client_env, connect  # noqa: E402
from support import SHARD_BINARY, StacklessTestCase, SuspectedDeadlock  # noqa: E402

DATABASE = "shard_test_cluster"  # ops/mariadb.sh grants shard_test_% to the test user
SYSTEMS = list(range(30000001, 30000009))  # eight solar systems
HEARTBEAT_S = 0.25
TIMEOUT_S = 5.0
WAIT_S = 45.0  # a bound on each wait, never a pause: the waits end as soon as their condition holds
CERTS = os.path.join(os.path.dirname(os.path.dirname(SHARD_BINARY)), "devcert")  # ops/devcert.sh, run by the build

_state = {}


def setUpModule():
    support.setUpModule()
    connect(pool_size=2)
    db.execute("DROP DATABASE IF EXISTS shard_test_cluster")
    db.execute("CREATE DATABASE shard_test_cluster CHARACTER SET utf8mb4")
    db.close()
    connect(pool_size=2, database=DATABASE)
    db_migrate.migrate()
    for system in SYSTEMS:
        db.execute("INSERT INTO solar_systems (id, name, security, x, y, z) VALUES (?, ?, 0.5, 0, 0, 0)",
                   system, "S-%d" % system)
    _state["dir"] = tempfile.TemporaryDirectory()
    env = client_env()
    _state["prefs"] = os.path.join(_state["dir"].name, "prefs.ini")
    with open(_state["prefs"], "w", encoding="utf-8") as f:
        f.write("[node]\nio_threads = 1\n"
                "[cluster]\nheartbeat_interval = %g\nnode_timeout = %g\n"
                "[db]\nhost = %s\nport = %s\nuser = %s\npassword_file = %s\ndatabase = %s\npool_size = 2\n"
                "[sol]\nport = 0\n"
                "[proxy]\nport = 0\nroutes_refresh = 0.25\nconnect_timeout = 2\ntls_cert = %s\ntls_key = %s\n"
                % (HEARTBEAT_S, TIMEOUT_S, env["SHARD_DB_HOST"], env["SHARD_DB_PORT"], env["SHARD_DB_USER"],
                   env["SHARD_DB_PASSWORD_FILE"], DATABASE, os.path.join(CERTS, "dev.crt"),
                   os.path.join(CERTS, "dev.key")))


def tearDownModule():
    try:
        db.execute("DROP DATABASE IF EXISTS shard_test_cluster")
    finally:
        db.close()
        _state.pop("dir").cleanup()
        support.tearDownModule()


def poll(predicate, what, timeout=WAIT_S):
    """predicate()'s first true value, polled every 50 ms (database reads
    and log files: no busier)."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise SuspectedDeadlock("suspected deadlock: %s not reached within %g s" % (what, timeout))
        time.sleep(0.05)


class Node:
    """A `shard ROLE` process with the test's prefs.ini; its log in a file.
    `test` (a ClusterTestCase) reports a failed wait."""

    def __init__(self, test, role, name, *args):
        self.test, self.role, self.name = test, role, name
        self.log_path = os.path.join(_state["dir"].name, "%s-%d.log" % (name, time.monotonic_ns()))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARD_DB_")}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([SHARD_BINARY, role, "--config", _state["prefs"], "--node.name", name]
                                         + list(args), stdout=log, stderr=subprocess.STDOUT, env=env)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_log(self, pattern):
        return self.test.poll(lambda: re.search(pattern, self.log()), "%s logging %r" % (self.name, pattern))

    def row(self):
        """Its live row in the directory (None until it registered)."""
        rows = db.query("SELECT id, role, address, port, pid, gone_at, gone_reason FROM cluster_nodes"
                        " WHERE name = ? AND pid = ?", self.name, self.proc.pid, named=True)
        return rows[0] if rows else None

    def registered(self):
        return self.test.poll(lambda: self.row(), "%s registered" % self.name)

    def signal(self, signum):
        self.proc.send_signal(signum)

    def wait_exit(self):
        try:
            return self.proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            raise SuspectedDeadlock("suspected deadlock: %s did not exit\n%s" % (self.name, self.test.post_mortem()))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT_S)


def assignment():
    """{node id: [system ids]} as the directory has it, live hosts only."""
    hosted = {}
    for system, node in db.query("SELECT a.system_id, a.node_id FROM system_assignments a"
                                 " JOIN cluster_nodes n ON n.id = a.node_id WHERE n.gone_at IS NULL ORDER BY 1"):
        hosted.setdefault(node, []).append(system)
    return hosted


def split_over(*node_ids):
    """The systems, all hosted, balanced over exactly these nodes."""
    hosted = assignment()
    if set(hosted) != set(node_ids) or sum(len(s) for s in hosted.values()) != len(SYSTEMS):
        return None
    counts = [len(s) for s in hosted.values()]
    return hosted if max(counts) - min(counts) <= 1 else None


class ClusterTestCase(StacklessTestCase):
    deadline_s = 240

    def setUp(self):
        super().setUp()
        self.nodes = []
        db.execute("DELETE FROM system_assignments")
        db.execute("DELETE FROM cluster_nodes")

    def start(self, role, name, *args):
        node = Node(self, role, name, *args)
        self.addCleanup(node.kill)
        self.nodes.append(node)
        return node

    def poll(self, predicate, what):
        """poll(), failing with every node's Python stack and log, and the directory."""
        try:
            return poll(predicate, what)
        except SuspectedDeadlock as e:
            raise SuspectedDeadlock("%s\n%s" % (e, self.post_mortem())) from None

    def post_mortem(self):
        for node in self.nodes:
            if node.proc.poll() is None:
                node.signal(signal.SIGUSR1)  # node_main: faulthandler dumps its stack into its log
        time.sleep(1)
        logs = "".join("\n--- %s (pid %d, %s):\n%s" % (n.name, n.proc.pid, "exit %s" % n.proc.returncode
                                                         if n.proc.poll() is not None else "running", n.log())
                       for n in self.nodes)
        nodes = db.query("SELECT id, name, pid, heartbeat_at, gone_at, gone_reason FROM cluster_nodes")
        return "directory: %r\nassigned: %r%s" % (nodes, assignment(), logs)

    def sol(self, name, address, *args):
        return self.start("sol", name, "--sol.address", address, *args)

    def proxy(self, name):
        return self.start("proxy", name, "--proxy.address", "127.0.0.1")

    def two_sols_and_a_proxy(self):
        a = self.sol("sol-a", "127.0.0.2")
        b = self.sol("sol-b", "127.0.0.3", "--loop.fps", "50", "--loop.strategy", "pending_call", "--node.io_threads", "3")
        rows = a.registered(), b.registered()
        self.poll(lambda: split_over(rows[0]["id"], rows[1]["id"]), "the systems split over both sols")
        proxy = self.proxy("proxy-1")
        for node, row in zip((a, b), rows):
            proxy.wait_log(r"linked to sol %d \(%s\) at %s:%d" % (row["id"], node.name, re.escape(row["address"]),
                                                                    row["port"]))
        return a, b, proxy, rows


class DirectoryTest(ClusterTestCase):

    def test_two_sols_register_split_the_systems_and_the_proxy_links_to_both(self):
        a, b, proxy, (row_a, row_b) = self.two_sols_and_a_proxy()
        self.assertEqual((row_a["role"], row_a["address"]), ("sol", "127.0.0.2"))
        self.assertEqual((row_b["role"], row_b["address"]), ("sol", "127.0.0.3"))
        self.assertNotEqual(row_a["port"], 0, "the port taken is registered, not the 0 asked for")
        self.assertIsNone(row_a["gone_at"])
        row_p = proxy.registered()
        self.assertEqual((row_p["role"], row_p["address"]), ("proxy", "127.0.0.1"))
        hosted = split_over(row_a["id"], row_b["id"])
        self.assertEqual(sorted(len(s) for s in hosted.values()), [4, 4])
        proxy.wait_log(r"routes: " + ", ".join(r"sol %d \(%s\) 4 systems" % (row["id"], name) for row, name in
                                               sorted([(row_a, "sol-a"), (row_b, "sol-b")], key=lambda r: r[0]["id"])))
        for sol in (a, b):
            sol.wait_log(r"node link from [0-9.]+:\d+ accepted")
        # The loop's keys reached the engine (the file's, and the command line's over it).
        a.wait_log(r"sol node: game loop at 30 fps, dispatch strategy main_loop, 1 IO threads")
        b.wait_log(r"sol node: game loop at 50 fps, dispatch strategy pending_call, 3 IO threads")
        # Heartbeats advance on the database's clock.
        (first,) = db.query("SELECT heartbeat_at FROM cluster_nodes WHERE id = ?", row_a["id"])[0]
        self.poll(lambda: db.query("SELECT heartbeat_at FROM cluster_nodes WHERE id = ?", row_a["id"])[0][0] > first,
             "a heartbeat")

    def test_a_second_live_node_of_the_same_name_is_refused(self):
        a = self.sol("sol-a", "127.0.0.2")
        row = a.registered()
        twin = self.sol("sol-a", "127.0.0.3")
        self.assertEqual(twin.wait_exit(), 1)
        self.assertIn("node name 'sol-a' is taken by live node %d" % row["id"], twin.log())
        self.assertIsNone(a.row()["gone_at"], "the live node keeps its place")


class GoneTest(ClusterTestCase):

    def test_a_killed_sol_is_marked_gone_after_the_timeout_and_its_systems_move(self):
        a, b, proxy, (row_a, row_b) = self.two_sols_and_a_proxy()
        b.signal(signal.SIGKILL)
        b.wait_exit()
        gone = self.poll(lambda: db.query("SELECT gone_reason, TIMESTAMPDIFF(MICROSECOND, heartbeat_at, gone_at) / 1e6"
                                     " FROM cluster_nodes WHERE id = ? AND gone_at IS NOT NULL", row_b["id"]),
                    "the killed sol marked gone")
        reason, silent_s = gone[0]
        self.assertEqual(reason, "timeout")
        self.assertGreaterEqual(float(silent_s), TIMEOUT_S, "marked gone before the timeout")
        hosted = self.poll(lambda: split_over(row_a["id"]), "every system on the surviving sol")
        self.assertEqual(hosted[row_a["id"]], SYSTEMS)
        proxy.wait_log(r"link to sol %d \(sol-b\).* closed" % row_b["id"])
        proxy.wait_log(r"routes: sol %d \(sol-a\) 8 systems\n" % row_a["id"])

        # The same name comes back as a new node: the systems split again and
        # the proxy links to it.
        b2 = self.sol("sol-b", "127.0.0.3")
        row_b2 = b2.registered()
        self.assertNotEqual(row_b2["id"], row_b["id"])
        self.poll(lambda: split_over(row_a["id"], row_b2["id"]), "the systems split over the sols again")
        proxy.wait_log(r"linked to sol %d \(sol-b\) at 127\.0\.0\.3:%d" % (row_b2["id"], row_b2["port"]))

    def test_a_crashed_node_restarted_on_its_host_takes_its_name_back_at_once(self):
        a = self.sol("sol-a", "127.0.0.2")
        row_a = a.registered()
        a.signal(signal.SIGKILL)
        a.wait_exit()
        again = self.sol("sol-a", "127.0.0.2")
        row_again = again.registered()  # long before the timeout: its old pid is dead on this host
        (reason, silent_s), = db.query("SELECT gone_reason, TIMESTAMPDIFF(MICROSECOND, heartbeat_at, gone_at) / 1e6"
                                       " FROM cluster_nodes WHERE id = ?", row_a["id"])
        self.assertEqual(reason, "process gone")
        self.assertLess(float(silent_s), TIMEOUT_S)
        self.assertEqual(self.poll(lambda: split_over(row_again["id"]), "the systems on the new incarnation"),
                         {row_again["id"]: SYSTEMS})

    def test_sigterm_marks_a_node_gone_at_once(self):
        a, b, proxy, (row_a, row_b) = self.two_sols_and_a_proxy()
        b.signal(signal.SIGTERM)
        self.assertEqual(b.wait_exit(), 0, b.log())
        # No wait: by the time it exited, it had left and handed its systems over.
        self.assertEqual(b.row()["gone_reason"], "stopped")
        self.assertEqual(split_over(row_a["id"]), {row_a["id"]: SYSTEMS})
        for node in (proxy, a):
            node.signal(signal.SIGTERM)
            self.assertEqual(node.wait_exit(), 0, node.log())
            self.assertEqual(node.row()["gone_reason"], "stopped")
        self.assertEqual(assignment(), {}, "no live sol: no route")

    def test_a_node_stalled_past_the_timeout_stops_when_it_wakes(self):
        a, b, proxy, (row_a, row_b) = self.two_sols_and_a_proxy()
        b.signal(signal.SIGSTOP)
        try:
            self.poll(lambda: split_over(row_a["id"]), "the stalled sol's systems moved")
        finally:
            b.signal(signal.SIGCONT)
        self.assertEqual(b.wait_exit(), 1, b.log())
        self.assertIn("node %d was marked gone (timeout)" % row_b["id"], b.log())
        self.assertEqual(b.row()["gone_reason"], "timeout", "its leave does not overwrite why it was dropped")


if __name__ == "__main__":
    unittest.main()
