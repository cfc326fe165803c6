"""live_settings: the registry's validation, logging and notifications, and
the watcher's reads of the real tables (the content_versions migration's triggers).
The node-level behaviour (a running `shard run`, the interval, a database
restart) is in test_node_start.py."""

import logging
import unittest

import db
import db_migrate
import live_settings
from dbsupport import connect
from live_settings import Registry, Watcher, choice, integer, number
from support import StacklessTestCase
from support import setUpModule as engine_setUpModule, tearDownModule as engine_tearDownModule

DATABASE = "shard_test_live"  # ops/mariadb.sh grants shard_test_% to the test user


def setUpModule():
    engine_setUpModule()
    connect(pool_size=2)
    db.execute("DROP DATABASE IF EXISTS shard_test_live")
    db.execute("CREATE DATABASE shard_test_live CHARACTER SET utf8mb4")
    db.close()
    connect(pool_size=2, database=DATABASE)
    db_migrate.migrate()


def tearDownModule():
    try:
        db.execute("DROP DATABASE IF EXISTS shard_test_live")
    finally:
        db.close()
        engine_tearDownModule()


class ValidatorTest(unittest.TestCase):

    def test_integer_parses_in_range_and_names_the_range_when_refusing(self):
        self.assertEqual(integer(1, 10)(" 7 "), 7)
        with self.assertRaisesRegex(ValueError, r"^out of range; an integer in 1\.\.10$"):
            integer(1, 10)("11")
        with self.assertRaisesRegex(ValueError, "^not an integer"):
            integer(1, 10)("7.5")

    def test_number_refuses_nan_infinity_and_an_open_bound(self):
        self.assertEqual(number(0, 1, low_open=True)("0.25"), 0.25)
        for text in ("nan", "inf", "0", "1.5", "x"):
            with self.subTest(text=text), self.assertRaises(ValueError):
                number(0, 1, low_open=True)(text)

    def test_choice_is_case_insensitive_and_returns_the_declared_name(self):
        self.assertEqual(choice("main_loop", "on_block")("ON_BLOCK"), "on_block")
        with self.assertRaisesRegex(ValueError, "one of main_loop, on_block"):
            choice("main_loop", "on_block")("fastest")


class RegistryTest(unittest.TestCase):

    def setUp(self):
        self.registry = Registry()
        self.applied = []
        self.registry.register("fps", number(1, 1000), 30.0, apply=self.applied.append)

    def update(self, rows):
        with self.assertLogs("shard.settings", logging.INFO) as logs:
            self.registry.update(rows)
        return logs.output

    def test_a_valid_value_is_applied_logged_old_to_new_and_subscribers_told(self):
        seen = []
        self.registry.subscribe("fps", seen.append)
        out = self.update([("fps", "60")])
        self.assertEqual(self.applied, [60.0])
        self.assertEqual(self.registry.get("fps"), 60.0)
        self.assertEqual(seen, [60.0])
        self.assertEqual(out, ["INFO:shard.settings:setting fps: 30.0 -> 60.0 (from the settings table)"])

    def test_a_bad_value_is_refused_with_its_reason_and_the_old_value_kept(self):
        self.update([("fps", "60")])
        out = self.update([("fps", "0")])
        self.assertEqual(out, ["WARNING:shard.settings:setting fps: refused '0' "
                               "(out of range; a number in [1, 1000]); keeping 60.0"])
        self.assertEqual(self.registry.get("fps"), 60.0)
        self.assertEqual(self.applied, [60.0])

    def test_a_refused_value_is_logged_once_not_at_every_poll(self):
        self.update([("fps", "fast")])
        with self.assertNoLogs("shard.settings"):
            self.registry.update([("fps", "fast")])

    def test_an_apply_that_refuses_keeps_the_old_value(self):
        def refuse(value):
            raise ValueError("not now")
        self.registry.register("budget", number(0, 1), 0.5, apply=refuse)
        out = self.update([("budget", "0.7")])
        self.assertEqual(out, ["WARNING:shard.settings:setting budget: refused '0.7' (not now); keeping 0.5"])
        self.assertEqual(self.registry.get("budget"), 0.5)

    def test_a_deleted_row_brings_the_default_back(self):
        self.update([("fps", "60")])
        out = self.update([])
        self.assertEqual(self.registry.get("fps"), 30.0)
        self.assertEqual(self.applied, [60.0, 30.0])
        self.assertIn("30.0 (its row is gone: the default)", out[0])

    def test_an_unknown_name_is_warned_about_once(self):
        out = self.update([("fsp", "60")])
        self.assertEqual(out, ["WARNING:shard.settings:settings table: 'fsp' is not a setting of this node: ignored"])
        with self.assertNoLogs("shard.settings"):
            self.registry.update([("fsp", "60")])

    def test_a_failing_subscriber_does_not_stop_the_others(self):
        seen = []
        self.registry.subscribe("fps", lambda value: 1 / 0)
        self.registry.subscribe("fps", seen.append)
        out = self.update([("fps", "45")])
        self.assertEqual(seen, [45.0])
        self.assertTrue(any("ZeroDivisionError" in line for line in out), out)

    def test_describe_lists_each_setting_with_its_validator(self):
        self.registry.register("mode", choice("a", "b"), "a", doc="the mode")
        self.registry.update([("fps", "50")])
        self.assertEqual(self.registry.describe(), [
            {"name": "fps", "value": 50.0, "default": 30.0, "validator": "a number in [1, 1000]", "doc": ""},
            {"name": "mode", "value": "a", "default": "a", "validator": "one of a, b", "doc": "the mode"}])

    def test_a_setting_is_registered_once(self):
        with self.assertRaisesRegex(ValueError, "already registered"):
            self.registry.register("fps", number(1, 2), 1.0)


class WatcherTest(StacklessTestCase):
    """Against the real tables of a migrated database."""

    deadline_s = 30

    def setUp(self):
        super().setUp()
        for statement in ("DELETE FROM settings", "DELETE FROM solar_systems", "DELETE FROM chat_channels"):
            db.execute(statement)
        self.registry = Registry()
        self.registry.register("fps", number(1, 1000), 30.0)
        self.changes = []
        for table in live_settings.CONTENT_TABLES:
            self.registry.on_table_change(table, lambda table, version: self.changes.append(table))
        self.watcher = Watcher(self.registry)
        self.watcher.poll()  # the baseline

    def test_a_row_written_with_sql_is_applied_at_the_next_poll(self):
        db.execute("INSERT INTO settings (name, value) VALUES (?, ?)", "fps", "20")
        self.assertEqual(self.registry.get("fps"), 30.0)
        self.watcher.poll()
        self.assertEqual(self.registry.get("fps"), 20.0)

    def test_every_kind_of_content_change_is_notified_once_per_table(self):
        db.execute("INSERT INTO solar_systems (id, name, security, x, y, z) VALUES (1, 'Jita', 0.9, 0, 0, 0)")
        self.watcher.poll()
        self.assertEqual(self.changes, ["solar_systems"])
        db.execute("UPDATE solar_systems SET security = 0.5 WHERE id = 1")
        db.execute("INSERT INTO chat_channels (name) VALUES ('local')")
        self.watcher.poll()
        self.assertEqual(self.changes, ["solar_systems", "solar_systems", "chat_channels"])
        db.execute("DELETE FROM solar_systems WHERE id = 1")
        self.watcher.poll()
        self.watcher.poll()  # nothing new: no notification
        self.assertEqual(self.changes, ["solar_systems", "solar_systems", "chat_channels", "solar_systems"])

    def test_a_change_rolled_back_is_not_notified(self):
        with self.assertRaises(ZeroDivisionError):
            with db.transaction() as tx:
                tx.execute("INSERT INTO chat_channels (name) VALUES ('rolled back')")
                1 / 0
        self.watcher.poll()
        self.assertEqual(self.changes, [])

    def test_a_slow_database_is_warned_about_once_the_values_kept_and_the_watch_resumes(self):
        db.execute("INSERT INTO settings (name, value) VALUES (?, ?)", "fps", "20")
        self.watcher.query_timeout = 0.3
        with db.transaction() as tx:
            tx.execute("LOCK TABLES settings WRITE")  # the watcher's reads wait behind it
            with self.assertLogs("shard.settings", logging.WARNING) as logs:
                self.watcher.poll_guarded()
                self.watcher.poll_guarded()
            tx.execute("UNLOCK TABLES")
        self.assertEqual(logs.output, ["WARNING:shard.settings:settings watch: the database does not answer "
                                       "(no answer within 0.3 s); keeping the values in force"])
        self.assertEqual(self.registry.get("fps"), 30.0)
        self.watcher.query_timeout = 10
        with self.assertLogs("shard.settings", logging.INFO) as logs:
            self.watcher.poll_guarded()
        self.assertEqual(self.registry.get("fps"), 20.0)
        self.assertIn("INFO:shard.settings:settings watch: the database answers again; watching", logs.output)

    def test_the_first_read_is_a_baseline_not_a_change(self):
        db.execute("INSERT INTO chat_channels (name) VALUES ('before the node')")
        registry = Registry()
        seen = []
        registry.on_table_change("chat_channels", lambda table, version: seen.append(version))
        Watcher(registry).poll()
        self.assertEqual(seen, [])


if __name__ == "__main__":
    unittest.main()
