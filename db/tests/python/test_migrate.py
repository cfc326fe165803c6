"""db_migrate: db/schema/ applied in order against the real server, recorded,
never applied twice, a newer schema refused."""

import os
import tempfile
import unittest

import db
import db_migrate
from dbsupport import connect
from support import StacklessTestCase
from support import setUpModule as engine_setUpModule, tearDownModule as engine_tearDownModule

DATABASE = "shard_test_migrate"  # ops/mariadb.sh grants shard_test_% to the test user
ALL_VERSIONS = [version for version, _ in db_migrate.migrations()]


def fresh_database():
    """An empty database of our own, the pool connected to it."""
    db.close()
    connect(pool_size=2)
    db.execute("DROP DATABASE IF EXISTS shard_test_migrate")
    db.execute("CREATE DATABASE shard_test_migrate CHARACTER SET utf8mb4")
    db.close()
    connect(pool_size=2, database=DATABASE)


def tables():
    return {row[0] for row in db.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")}


def setUpModule():
    engine_setUpModule()
    connect(pool_size=2)


def tearDownModule():
    try:
        db.execute("DROP DATABASE IF EXISTS shard_test_migrate")
    finally:
        db.close()
        engine_tearDownModule()


def write_schema(directory, files):
    for name, text in files.items():
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(text)


class ShippedSchemaTest(StacklessTestCase):
    deadline_s = 60

    def test_from_empty_every_migration_applies_once(self):
        fresh_database()
        self.assertEqual(ALL_VERSIONS, list(range(1, len(ALL_VERSIONS) + 1)))
        self.assertEqual(db_migrate.migrate(), ALL_VERSIONS)
        self.assertLessEqual({"accounts", "characters", "solar_systems", "gates", "ships", "wallets",
                              "market_orders", "wallet_transactions", "chat_channels", "chat_members",
                              "cluster_nodes", "system_assignments", "settings", "schema_migrations"}, tables())
        self.assertEqual(db_migrate.migrate(), [])
        self.assertEqual(db.query("SELECT version FROM schema_migrations ORDER BY version"),
                         [(v,) for v in ALL_VERSIONS])

    def test_from_each_earlier_version(self):
        for start in range(len(ALL_VERSIONS)):
            with self.subTest(start=start):
                fresh_database()
                self.assertEqual(db_migrate.migrate(target=start), ALL_VERSIONS[:start])
                self.assertEqual(db_migrate.migrate(), ALL_VERSIONS[start:])

    def test_a_newer_schema_is_refused(self):
        fresh_database()
        db_migrate.migrate()
        db.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", len(ALL_VERSIONS) + 1, "9999_future.sql")
        with self.assertRaisesRegex(db_migrate.SchemaTooNew, "version %d" % (len(ALL_VERSIONS) + 1)):
            db_migrate.migrate()
        # The lock was released: the next attempt gets as far as the check again.
        with self.assertRaises(db_migrate.SchemaTooNew):
            db_migrate.migrate()


class RunnerTest(StacklessTestCase):
    deadline_s = 30

    def test_a_recorded_migration_is_never_applied_again(self):
        fresh_database()
        with tempfile.TemporaryDirectory() as schema:
            # Not re-runnable on purpose: a second CREATE would fail.
            write_schema(schema, {"0001_first.sql": "CREATE TABLE t1 (id INT);\n-- a comment\nINSERT INTO t1 VALUES (1);\n"})
            self.assertEqual(db_migrate.migrate(schema), [1])
            write_schema(schema, {"0002_second.sql": "CREATE TABLE t2 (id INT);"})
            self.assertEqual(db_migrate.migrate(schema), [2])
            self.assertEqual(db.query("SELECT id FROM t1"), [(1,)])

    def test_a_failing_migration_is_not_recorded(self):
        fresh_database()
        with tempfile.TemporaryDirectory() as schema:
            write_schema(schema, {"0001_ok.sql": "CREATE TABLE t1 (id INT);", "0002_bad.sql": "CREATE TABLE t1 (id INT);"})
            with self.assertRaises(db.Error) as caught:
                db_migrate.migrate(schema)
            self.assertEqual(caught.exception.code, 1050)  # table exists
            self.assertEqual(db.query("SELECT version FROM schema_migrations"), [(1,)])

    def test_a_gap_in_the_numbers_is_refused(self):
        with tempfile.TemporaryDirectory() as schema:
            write_schema(schema, {"0001_a.sql": "", "0003_c.sql": ""})
            with self.assertRaisesRegex(db_migrate.SchemaError, "expected version 2"):
                db_migrate.migrations(schema)


if __name__ == "__main__":
    unittest.main()
