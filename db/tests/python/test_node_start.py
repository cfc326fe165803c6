"""A `shard run` node and its database: migrations applied at start (from
empty and from each earlier version), a newer schema refused, and live
settings: a change made with plain SQL while the node runs takes effect
within the interval, a bad value is refused and logged, a content-table
change is notified, and the watch survives a database restart."""

import os
import re
import select
import signal
import subprocess
import tempfile
import textwrap
import time
import unittest

import db
import db_migrate
from dbsupport import client_env, connect, server
from support import SHARD_BINARY, StacklessTestCase, SuspectedDeadlock
from support import setUpModule as engine_setUpModule, tearDownModule as engine_tearDownModule

DATABASE = "shard_test_node"  # ops/mariadb.sh grants shard_test_% to the test user
ALL_VERSIONS = [version for version, _ in db_migrate.migrations()]
NEWEST = ALL_VERSIONS[-1]
INTERVAL_S = 0.2
# How late past the interval a change may show: a loaded machine delays a
# frame, a poll, a process start. The interval itself is what is tested:
# the default (1 s) alone is longer than INTERVAL_S plus this.
SLACK_S = 0.75
WAIT_S = 20.0

# The node's script: reports the loop's fps (frame stats) and dispatch
# strategy when they change, and the content-table notifications.
REPORTER = """\
import gameloop, live_settings
last = [None]

def report(frame, dt):
    now = (gameloop.stats()["fps"], gameloop.dispatch_strategy())
    if now != last[0]:
        last[0] = now
        print("running fps=%g strategy=%s" % now, flush=True)

gameloop.add_tick(report)
live_settings.on_table_change("chat_channels", lambda table, version: print("changed", table, flush=True))
print("script ran", flush=True)
"""

# Reports the schema's version from inside the node, then exits.
VERSION_REPORTER = """\
import db
print("script ran at version", db.query("SELECT MAX(version) FROM schema_migrations")[0][0], flush=True)
raise SystemExit(0)
"""


def fresh_database():
    """An empty database of our own, the test's pool connected to it."""
    db.close()
    connect(pool_size=2)
    db.execute("DROP DATABASE IF EXISTS shard_test_node")
    db.execute("CREATE DATABASE shard_test_node CHARACTER SET utf8mb4")
    db.close()
    connect(pool_size=2, database=DATABASE)


def setUpModule():
    engine_setUpModule()
    connect(pool_size=2)


def tearDownModule():
    try:
        db.close()
        connect(pool_size=1)
        db.execute("DROP DATABASE IF EXISTS shard_test_node")
    finally:
        db.close()
        engine_tearDownModule()


def node_env(**changes):
    env = dict(os.environ)
    env.update(client_env())
    env["SHARD_DB_DATABASE"] = DATABASE
    env.update(changes)
    return env


class Node:
    """A `shard run` process; its stdout and stderr as one stream of lines."""

    def __init__(self, script, *options, env=None):
        self.output = ""
        self.proc = subprocess.Popen([SHARD_BINARY, "run", *options, script], env=env or node_env(),
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_for(self, pattern, timeout=WAIT_S, start=0):
        """The first match of `pattern` in the output past `start`; fails as a suspected deadlock if none comes."""
        regex = re.compile(pattern, re.M)
        end = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            match = regex.search(self.output, start)
            if match:
                return match
            left = end - time.monotonic()
            if left <= 0:
                raise SuspectedDeadlock("suspected deadlock: the node never wrote %r; it wrote:\n%s" % (pattern, self.output))
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError("the node exited (%s) before writing %r:\n%s" % (self.proc.wait(), pattern, self.output))
                self.output += chunk.decode(errors="replace")

    def finish(self, stop=True):
        """Exit status and the whole output once the node exited; with `stop`, stopped with SIGINT first."""
        if stop and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rest, _ = self.proc.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()
            raise SuspectedDeadlock("suspected deadlock: the node did not stop:\n%s" % self.output) from None
        self.output += rest.decode(errors="replace")
        return self.proc.returncode, self.output


class NodeTestCase(StacklessTestCase):
    deadline_s = 120

    def setUp(self):
        super().setUp()
        self.tmp = tempfile.TemporaryDirectory()
        self.nodes = []

    def tearDown(self):
        for node in self.nodes:
            node.finish()
        self.tmp.cleanup()
        super().tearDown()

    def script(self, source):
        path = os.path.join(self.tmp.name, "node_script.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(textwrap.dedent(source))
        return path

    def node(self, source, *options, env=None):
        node = Node(self.script(source), *options, env=env)
        self.nodes.append(node)
        return node

    def run_node(self, source, *options, env=None):
        return self.node(source, *options, env=env).finish(stop=False)


class MigrationsAtStartTest(NodeTestCase):

    def test_a_node_migrates_an_empty_database_before_its_script_runs(self):
        fresh_database()
        rc, out = self.run_node(VERSION_REPORTER)
        self.assertEqual(rc, 0, out)
        self.assertIn("schema: applied migrations %s (now version %d)" % (", ".join(map(str, ALL_VERSIONS)), NEWEST), out)
        self.assertIn("script ran at version %d\n" % NEWEST, out)

    def test_a_node_migrates_from_each_earlier_version(self):
        for start in range(1, NEWEST):
            with self.subTest(start=start):
                fresh_database()
                db_migrate.migrate(target=start)
                rc, out = self.run_node(VERSION_REPORTER)
                self.assertEqual(rc, 0, out)
                self.assertIn("schema: applied migrations %s (now version %d)"
                              % (", ".join(map(str, ALL_VERSIONS[start:])), NEWEST), out)
                self.assertEqual(db.query("SELECT version FROM schema_migrations ORDER BY version"),
                                 [(v,) for v in ALL_VERSIONS])

    def test_a_node_on_an_up_to_date_schema_applies_nothing(self):
        fresh_database()
        db_migrate.migrate()
        rc, out = self.run_node(VERSION_REPORTER)
        self.assertEqual(rc, 0, out)
        self.assertIn("schema: up to date", out)

    def test_a_node_refuses_to_start_on_a_newer_schema(self):
        fresh_database()
        db_migrate.migrate()
        db.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", NEWEST + 1, "9999_future.sql")
        rc, out = self.run_node(VERSION_REPORTER)
        self.assertNotEqual(rc, 0, out)
        self.assertIn("shard run: refusing to start: the database's schema is version %d, this code knows up to %d"
                      % (NEWEST + 1, NEWEST), out)
        self.assertNotIn("script ran", out)
        self.assertNotIn("Traceback", out)

    def test_a_node_refuses_to_start_without_its_database(self):
        rc, out = self.run_node(VERSION_REPORTER, env=node_env(SHARD_DB_SOCKET="", SHARD_DB_PORT="1"))
        self.assertNotEqual(rc, 0, out)
        self.assertRegex(out, r"shard run: refusing to start: the database: \[200[23]\] cannot connect")
        self.assertNotIn("script ran", out)

    def test_no_db_runs_without_the_database_it_is_configured_for(self):
        rc, out = self.run_node("print('script ran')\nraise SystemExit(0)\n", "--no-db",
                                env=node_env(SHARD_DB_SOCKET="", SHARD_DB_PORT="1"))
        self.assertEqual((rc, out), (0, "script ran\n"))


class LiveSettingsTest(NodeTestCase):

    def setUp(self):
        super().setUp()
        fresh_database()
        db_migrate.migrate()
        db.execute("INSERT INTO settings (name, value) VALUES (?, ?)", "settings_interval_s", str(INTERVAL_S))

    def start_node(self):
        node = self.node(REPORTER, "--fps", "30")
        node.wait_for(r"^running fps=30 strategy=main_loop$")
        return node

    def set(self, name, value):
        db.execute("REPLACE INTO settings (name, value) VALUES (?, ?)", name, value)
        return time.monotonic()

    def test_a_setting_changed_with_sql_takes_effect_within_the_interval(self):
        node = self.start_node()
        self.assertIn("settings watch: every %g s" % INTERVAL_S, node.output)
        changed = self.set("fps", "60")
        line = node.wait_for(r"^running fps=60 strategy=main_loop$")
        self.assertLess(time.monotonic() - changed, INTERVAL_S + SLACK_S)
        self.assertIn("INFO shard.settings: setting fps: 30.0 -> 60.0 (from the settings table)", node.output)
        changed = self.set("dispatch_strategy", "pending_call")
        node.wait_for(r"^running fps=60 strategy=pending_call$", start=line.end())
        self.assertLess(time.monotonic() - changed, INTERVAL_S + SLACK_S)

    def test_a_bad_value_is_refused_logged_and_the_old_value_kept(self):
        node = self.start_node()
        self.set("fps", "-5")
        node.wait_for(r"WARNING shard\.settings: setting fps: refused '-5' \(out of range; a number in \[1, 1000\]\); "
                      r"keeping 30\.0$")
        # A later change is applied: the node polled past the bad value and runs on at 30.
        self.set("dispatch_strategy", "on_block")
        node.wait_for(r"^running fps=30 strategy=on_block$")
        self.assertNotIn("fps=-5", node.output)

    def test_a_content_table_change_is_notified(self):
        node = self.start_node()
        db.execute("INSERT INTO chat_channels (name) VALUES ('local')")
        node.wait_for(r"^changed chat_channels$")
        self.assertIn("content table chat_channels changed (version 0 -> 1)", node.output)

    def test_the_watch_warns_while_the_database_is_down_and_resumes_after(self):
        node = self.start_node()
        try:
            server("stop")
            warning = node.wait_for(r"WARNING shard\.settings: settings watch: the database does not answer .*; "
                                    r"keeping the values in force$")
            self.assertEqual(node.output.count("does not answer"), 1)
        finally:
            server("start")
        node.wait_for(r"settings watch: the database answers again; watching$", start=warning.end())
        db.close()  # the test's own pool: new connections to the restarted server
        connect(pool_size=2, database=DATABASE)
        self.set("fps", "45")
        node.wait_for(r"^running fps=45 strategy=main_loop$")
        self.assertEqual(node.output.count("does not answer"), 1)


if __name__ == "__main__":
    unittest.main()
