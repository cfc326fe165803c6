"""ops/demo/load.py, the demo universe of ops/run.sh, on a database of its
own (ctest's `mariadb` fixture): loaded twice, the second run adds nothing
and only sets the demo accounts' new password."""

import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
for folder in (("engine", "tests", "python"), ("db", "tests", "python"), ("server", "tests", "python")):
    sys.path.insert(0, os.path.join(REPO, *folder))

import accounts  # noqa: E402
import db  # noqa: E402
from cluster_support import WAIT_S, Cluster  # noqa: E402
from dbsupport import client_env  # noqa: E402
from support import SHARD_BINARY, StacklessTestCase  # noqa: E402

cluster = Cluster("shard_test_demo")
TABLES = ("solar_systems", "gates", "accounts", "characters", "ships", "wallets")


def setUpModule():
    cluster.set_up()


def tearDownModule():
    cluster.tear_down()


def load(password):
    env = dict(os.environ)
    env.update(client_env())
    env["SHARD_DB_DATABASE"] = cluster.database
    done = subprocess.run([SHARD_BINARY, "python", os.path.join(REPO, "ops", "demo", "load.py")], input=password + "\n",
                          capture_output=True, text=True, env=env, timeout=WAIT_S)
    if done.returncode != 0:
        raise AssertionError("load.py exited with %d:\n%s" % (done.returncode, done.stderr))
    return done.stdout


def counts():
    return {table: db.query("SELECT COUNT(*) FROM " + table)[0][0] for table in TABLES}


class DemoLoadTest(StacklessTestCase):
    deadline_s = 120

    def test_loading_twice_adds_nothing_and_sets_the_new_password(self):
        out = load("first-pw")
        self.assertIn("demo: account demo1 (created)", out)
        first = counts()
        self.assertEqual(first, {"solar_systems": 4, "gates": 8, "accounts": 3, "characters": 3, "ships": 3,
                                 "wallets": 3})
        # Every gate leads to a gate that leads back.
        gates = dict((gate, destination) for gate, destination in db.query("SELECT id, destination_gate_id FROM gates"))
        self.assertTrue(all(gates[gates[gate]] == gate for gate in gates))

        out = load("second-pw")
        self.assertIn("demo: account demo1 (password set)", out)
        self.assertEqual(counts(), first)
        self.assertEqual(accounts.check("demo2", "second-pw")[1], None)
        self.assertEqual(accounts.check("demo2", "first-pw")[1], "wrong password")


if __name__ == "__main__":
    unittest.main()
