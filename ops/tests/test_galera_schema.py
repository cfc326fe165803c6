"""What a Galera cluster needs of the schema (docs/deploying.md): after every
migration, each table is InnoDB (Galera replicates no other engine) and has a
primary key (Galera needs one on every table). On ctest's `mariadb` fixture."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
for folder in (("engine", "tests", "python"), ("db", "tests", "python"), ("server", "tests", "python")):
    sys.path.insert(0, os.path.join(REPO, *folder))

import db  # noqa: E402
from cluster_support import Cluster  # noqa: E402
from support import StacklessTestCase  # noqa: E402

cluster = Cluster("shard_test_galera")


def setUpModule():
    cluster.set_up()  # a database made by every migration


def tearDownModule():
    cluster.tear_down()


class GaleraSchemaTest(StacklessTestCase):

    def test_every_table_is_innodb_with_a_primary_key(self):
        tables = db.query("SELECT table_name, engine FROM information_schema.tables"
                          " WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'")
        self.assertGreater(len(tables), 10)
        self.assertEqual([name for name, engine in tables if engine != "InnoDB"], [])
        keyed = {row[0] for row in db.query("SELECT table_name FROM information_schema.table_constraints"
                                            " WHERE table_schema = DATABASE() AND constraint_type = 'PRIMARY KEY'")}
        self.assertEqual(sorted(name for name, _ in tables if name not in keyed), [])


if __name__ == "__main__":
    unittest.main()
