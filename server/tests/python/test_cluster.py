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
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "engine", "tests", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "db", "tests", "python"))

import db  # noqa: E402
from cluster_support import Cluster  # noqa: E402
from support import StacklessTestCase  # noqa: E402

SYSTEMS = list(range(30000001, 30000009))  # eight solar systems
HEARTBEAT_S = 0.25
TIMEOUT_S = 5.0

# 200 fps (sol-b overrides it on its command line): under the default
# dispatch strategy (main_loop) each database statement's completion waits
# for the next frame, and at 30 fps a node's start (a dozen statements) took
# ~0.5 s; the tests start some twenty nodes.
FPS = 200
cluster = Cluster("shard_test_cluster", {"cluster": {"heartbeat_interval": HEARTBEAT_S, "node_timeout": TIMEOUT_S},
                                         "loop": {"fps": FPS}})


def setUpModule():
    cluster.set_up()
    for system in SYSTEMS:
        db.execute("INSERT INTO solar_systems (id, name, security, x, y, z) VALUES (?, ?, 0.5, 0, 0, 0)",
                   system, "S-%d" % system)


def tearDownModule():
    cluster.tear_down()


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
        cluster.reset_directory()
        cluster.nodes.clear()  # a failed wait shows this test's nodes only

    def start(self, role, name, *args):
        node = cluster.start(role, name, *args)
        self.addCleanup(node.kill)
        return node

    def poll(self, predicate, what):
        return cluster.poll(predicate, what)

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
        a.wait_log(r"sol node: game loop at %d fps, dispatch strategy main_loop, 1 IO threads" % FPS)
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

    def test_a_node_that_aborts_leaves_its_python_stacks_in_its_log(self):
        a = self.sol("sol-a", "127.0.0.2")
        a.registered()
        a.signal(signal.SIGABRT)
        self.assertEqual(a.wait_exit(), -signal.SIGABRT)
        self.assertIn("Fatal Python error: Aborted", a.log())
        self.assertRegex(a.log(), r"(Current thread|Thread) 0x[0-9a-f]+ \(most recent call first\)")

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


class RpcAcrossNodesTest(ClusterTestCase):

    def test_the_proxy_calls_ping_on_each_sol_over_its_link(self):
        a, b, proxy, rows = self.two_sols_and_a_proxy()
        for node, row in zip((a, b), rows):
            # rpc over the link: the RpcCall went to the sol's node port, its
            # ping service answered with its own node id.
            proxy.wait_log(r"ping over the link to sol %d \(%s\) at %s:%d: answered by node %d in [0-9.]+ ms"
                           % (row["id"], node.name, re.escape(row["address"]), row["port"], row["id"]))
        for node in (proxy, a, b):
            self.assertNotIn("has no place on an RPC link", node.log())


if __name__ == "__main__":
    unittest.main()
