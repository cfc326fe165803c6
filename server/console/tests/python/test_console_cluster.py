"""The console across real sol and proxy nodes (the private MariaDB): each
node's console registers where it listens, one login is good on every node
(shared sessions), and a strategy set for every node of a role reaches each
of them, leaves the other role alone, and is audited on each node."""

import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tests", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "db", "tests", "python"))

import accounts  # noqa: E402
import cluster_support  # noqa: E402
import db  # noqa: E402
import support  # noqa: E402
from console_support import Client  # noqa: E402

cluster = cluster_support.Cluster("shard_test_console_cluster", {"console": {"port": 0}})


def setUpModule():
    global nodes
    cluster.set_up()
    how, value = support.run_in_tasklet(accounts.create, "boss", "pw-boss")
    assert how != "raised", value
    db.execute("UPDATE accounts SET console_role = 'operator' WHERE name = 'boss'")
    nodes = {name: cluster.start(role, name) for role, name in (("sol", "sol-a"), ("sol", "sol-b"),
                                                                 ("proxy", "proxy-a"))}
    try:
        for node in nodes.values():
            node.wait_log(r"admin console on http://127\.0\.0\.1:\d+/")
        cluster.poll(lambda: len(db.query("SELECT 1 FROM cluster_nodes WHERE gone_at IS NULL"
                                          " AND console_port IS NOT NULL")) == 3, "three consoles registered")
    except BaseException:
        tearDownModule()  # unittest skips it when setUpModule fails: no node outlives the test
        raise


def tearDownModule():
    for node in nodes.values():
        node.stop()
    cluster.tear_down()


def console_port(name):
    return db.query("SELECT console_port FROM cluster_nodes WHERE name = ? AND gone_at IS NULL", name)[0][0]


class Cluster(unittest.TestCase):

    def setUp(self):
        self.client = Client(console_port("sol-a"))
        answer = self.client.request("POST", "/api/login", {"name": "boss", "password": "pw-boss"})
        self.assertEqual(answer.status, 200, answer.body)
        self.client.cookie = answer.header("Set-Cookie").split(";", 1)[0]
        self.client.csrf = answer.json()["csrf"]

    def on(self, name):
        """The same session, on another node's console."""
        other = Client(console_port(name))
        other.cookie, other.csrf = self.client.cookie, self.client.csrf
        return other

    def strategy(self, name):
        answer = self.on(name).get("/api/stats")
        self.assertEqual(answer.status, 200, answer.body)
        return answer.json()["strategy"]

    def test_one_login_is_good_on_every_node(self):
        for name in nodes:
            self.assertEqual(self.on(name).get("/api/session").json()["name"], "boss")

    def test_the_cluster_view_has_every_live_nodes_statistics(self):
        answer = self.on("proxy-a").get("/api/cluster")
        self.assertEqual(answer.status, 200, answer.body)
        view = answer.json()
        self.assertEqual({role: sorted(nodes) for role, nodes in view.items()},
                         {"sol": ["sol-a", "sol-b"], "proxy": ["proxy-a"]})
        for role, stats in view.items():
            for name, s in stats.items():
                self.assertEqual((s["node"], s["role"]), (name, role), s)
                self.assertIn("frame_ms", s["frame"])

    def test_a_strategy_set_for_a_role_reaches_every_node_of_it_and_no_other(self):
        answer = self.client.post("/api/setting", {"name": "dispatch_strategy", "value": "on_block", "role": "sol"})
        self.assertEqual(answer.status, 200, answer.body)
        self.assertEqual({n: a.get("value") for n, a in answer.json()["nodes"].items()},
                         {"sol-a": "on_block", "sol-b": "on_block"})
        self.assertEqual((self.strategy("sol-a"), self.strategy("sol-b"), self.strategy("proxy-a")),
                         ("on_block", "on_block", "main_loop"))
        audited = db.query("SELECT node, action FROM console_audit WHERE account = 'boss' ORDER BY id")
        self.assertIn(("sol-a", "set dispatch_strategy (sol)"), audited)
        self.assertIn(("sol-b", "set dispatch_strategy"), audited)
        self.client.post("/api/setting", {"name": "dispatch_strategy", "value": "main_loop", "role": "sol"})

    def test_a_bad_value_for_a_role_is_refused_before_any_node_is_asked(self):
        answer = self.client.post("/api/setting", {"name": "fps", "value": 0, "role": "proxy"})
        self.assertEqual(answer.status, 400)
        self.assertIn("refused", answer.json()["error"])
        self.assertEqual(self.on("proxy-a").get("/api/stats").json()["fps_target"], 30.0)
        self.assertEqual(self.client.post("/api/setting", {"name": "fps", "value": 20, "role": "moon"}).status, 400)

    def test_the_cli_sets_fps_on_every_proxy(self):
        with open(os.path.join(cluster.dir.name, "boss-password"), "w", encoding="utf-8") as f:
            f.write("pw-boss\n")
        result = subprocess.run([support.SHARD_BINARY, "console", "--node", "127.0.0.1:%d" % console_port("sol-b"),
                                 "--user", "boss", "--password-file", os.path.join(cluster.dir.name, "boss-password"),
                                 "fps", "25", "--role", "proxy"], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "proxy-a: 30.0 -> 25.0")
        self.assertEqual(self.on("proxy-a").get("/api/stats").json()["fps_target"], 25.0)
        self.assertEqual(self.on("sol-a").get("/api/stats").json()["fps_target"], 30.0)

    def test_the_cli_shows_the_cluster_a_line_per_node(self):
        with open(os.path.join(cluster.dir.name, "boss-password"), "w", encoding="utf-8") as f:
            f.write("pw-boss\n")
        result = subprocess.run([support.SHARD_BINARY, "console", "--node", "127.0.0.1:%d" % console_port("sol-a"),
                                 "--user", "boss", "--password-file", os.path.join(cluster.dir.name, "boss-password"),
                                 "cluster"], capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual([line.split()[:2] for line in lines], [["proxy", "proxy-a"], ["sol", "sol-a"], ["sol", "sol-b"]])
        self.assertTrue(all(" fps " in line and " frame " in line for line in lines), result.stdout)

    def test_a_logout_on_one_node_ends_the_session_on_the_others(self):
        other = Client(console_port("sol-a"))
        answer = other.request("POST", "/api/login", {"name": "boss", "password": "pw-boss"})
        other.cookie, other.csrf = answer.header("Set-Cookie").split(";", 1)[0], answer.json()["csrf"]
        proxy = Client(console_port("proxy-a"))
        proxy.cookie, proxy.csrf = other.cookie, other.csrf
        self.assertEqual(proxy.get("/api/session").status, 200)
        self.assertEqual(other.post("/api/logout").status, 200)
        cluster.poll(lambda: proxy.get("/api/session").status == 401, "the logout known on the proxy", timeout=15)


if __name__ == "__main__":
    unittest.main()
