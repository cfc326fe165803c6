"""The console on a node with a database (the private MariaDB): console
accounts are the `accounts` with a console_role (0009_admin_roles.sql), a
player account without one is refused, and every change is a row of
console_audit with who and when."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "db", "tests", "python"))

import accounts  # noqa: E402
import db  # noqa: E402
import db_migrate  # noqa: E402
import support  # noqa: E402
from console_support import Client, Node  # noqa: E402
from dbsupport import client_env, connect  # noqa: E402

DATABASE = "shard_test_console"


def in_tasklet(func, *args):
    how, value = support.run_in_tasklet(func, *args)
    if how == "raised":
        raise value
    return value


def setUpModule():
    global node
    support.setUpModule()
    connect(pool_size=2)
    db.execute("DROP DATABASE IF EXISTS " + DATABASE)
    db.execute("CREATE DATABASE %s CHARACTER SET utf8mb4" % DATABASE)
    db.close()
    connect(pool_size=2, database=DATABASE)
    db_migrate.migrate()
    in_tasklet(accounts.create, "boss", "pw-boss")
    in_tasklet(accounts.create, "player", "pw-player")
    db.execute("UPDATE accounts SET console_role = 'operator' WHERE name = 'boss'")
    env = dict(os.environ, **client_env())
    env["SHARD_DB_DATABASE"] = DATABASE
    node = Node("--db", metrics=False, password_file=False, env=env)


def tearDownModule():
    try:
        node.stop()
        db.execute("DROP DATABASE IF EXISTS " + DATABASE)
    finally:
        db.close()
        support.tearDownModule()


def log_in(name, password):
    client = Client(node.port)
    answer = client.request("POST", "/api/login", {"name": name, "password": password})
    if answer.status == 200:
        client.cookie = answer.header("Set-Cookie").split(";", 1)[0]
        client.csrf = answer.json()["csrf"]
    return client, answer


class DatabaseAccounts(unittest.TestCase):

    def test_an_account_with_a_console_role_logs_in_with_that_role(self):
        client, answer = log_in("boss", "pw-boss")
        self.assertEqual(answer.status, 200, answer.body)
        self.assertEqual(answer.json()["role"], "operator")
        self.assertEqual(client.get("/api/stats").status, 200)

    def test_a_player_account_and_a_wrong_password_are_refused_alike(self):
        for name, password in (("player", "pw-player"), ("boss", "wrong")):
            _, answer = log_in(name, password)
            self.assertEqual(answer.status, 401)
            self.assertEqual(answer.json()["error"], "wrong name or password")

    def test_a_change_is_a_row_of_the_audit_table(self):
        client, _ = log_in("boss", "pw-boss")
        self.assertEqual(client.post("/api/setting", {"name": "fps", "value": 25}).status, 200)
        self.assertEqual(client.post("/api/setting", {"name": "fps", "value": "fast"}).status, 400)
        rows = db.query("SELECT account, node, action, detail, outcome, at FROM console_audit ORDER BY id")
        self.assertEqual([(r[0], r[2], r[3]) for r in rows[-2:]],
                         [("boss", "set fps", "fps = 25"), ("boss", "set fps", "fps = 'fast'")])
        self.assertEqual(rows[-2][4], "ok")
        self.assertTrue(rows[-1][4].startswith("refused"))
        self.assertTrue(rows[-1][1].startswith("run-"))


if __name__ == "__main__":
    unittest.main()
