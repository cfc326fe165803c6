"""accounts.py: salted scrypt hashes that carry their parameters, checks that
run off the game loop, account creation through the Python API and the
operators' CLI, against the private MariaDB (ctest's `mariadb` fixture)."""

import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "engine", "tests", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "db", "tests", "python"))

import accounts  # noqa: E402
import db  # noqa: E402
import db_migrate  # noqa: E402
import support  # noqa: E402
import uthread  # noqa: E402
from dbsupport import client_env, connect  # noqa: E402
from support import SHARD_BINARY, StacklessTestCase, run_in_tasklet  # noqa: E402

DATABASE = "shard_test_accounts"
CLI = os.path.join(HERE, "..", "..", "python", "accounts_cli.py")


def in_tasklet(func, *args):
    """func(*args) in a tasklet of its own (as a node runs it): its value, or its exception raised here."""
    how, value = run_in_tasklet(func, *args)
    if how == "raised":
        raise value
    return value


def setUpModule():
    support.setUpModule()
    connect(pool_size=2)
    db.execute("DROP DATABASE IF EXISTS " + DATABASE)
    db.execute("CREATE DATABASE %s CHARACTER SET utf8mb4" % DATABASE)
    db.close()
    connect(pool_size=2, database=DATABASE)
    db_migrate.migrate()


def tearDownModule():
    try:
        db.execute("DROP DATABASE IF EXISTS " + DATABASE)
    finally:
        db.close()
        support.tearDownModule()


class Hashes(unittest.TestCase):

    def test_the_stored_string_names_scheme_parameters_salt_and_hash(self):
        stored = accounts.hash_password("correct horse")
        scheme, params, salt, digest = stored.split("$")
        self.assertEqual((scheme, params), ("scrypt", "n=16384,r=8,p=1"))
        n, r, p, salt, digest = accounts.parse(stored)
        self.assertEqual((n, r, p, len(salt), len(digest)), (16384, 8, 1, 16, 32))
        self.assertNotIn("correct horse", stored)

    def test_the_right_password_matches_and_a_wrong_one_does_not(self):
        stored = accounts.hash_password("correct horse")
        self.assertTrue(accounts.verify_password("correct horse", stored))
        self.assertFalse(accounts.verify_password("correct horsE", stored))
        self.assertFalse(accounts.verify_password("", stored))

    def test_the_same_password_hashes_differently_each_time(self):
        self.assertNotEqual(accounts.hash_password("pw"), accounts.hash_password("pw"))

    def test_a_hash_made_with_other_parameters_still_verifies_and_asks_for_a_rehash(self):
        cheap = accounts.hash_password("pw", n=1 << 10, r=4, p=1)
        self.assertTrue(cheap.startswith("scrypt$n=1024,r=4,p=1$"))
        self.assertTrue(accounts.verify_password("pw", cheap))
        self.assertTrue(accounts.needs_rehash(cheap))
        self.assertFalse(accounts.needs_rehash(accounts.hash_password("pw")))

    def test_strings_that_are_not_our_hashes_are_refused_with_the_reason(self):
        good = accounts.hash_password("pw").split("$")
        for bad in ("", "plain", "bcrypt$n=16384,r=8,p=1$AAAA$AAAA", "scrypt$n=16384,r=8$AAAA$AAAA",
                    "scrypt$n=1000,r=8,p=1$" + good[2] + "$" + good[3],        # n not a power of two
                    "scrypt$n=%d,r=8,p=1$%s$%s" % (1 << 30, good[2], good[3]),  # a check costing gigabytes
                    "scrypt$n=16384,r=8,p=1$!!$" + good[3]):
            with self.subTest(bad=bad), self.assertRaisesRegex(ValueError, "password hash"):
                accounts.verify_password("pw", bad)

    def test_empty_and_oversized_passwords_make_no_hash(self):
        with self.assertRaisesRegex(accounts.AccountError, "empty"):
            accounts.hash_password("")
        with self.assertRaisesRegex(accounts.AccountError, "longer than 1024"):
            accounts.hash_password("x" * 1025)
        self.assertFalse(accounts.verify_password("x" * 1025, accounts.hash_password("pw")))


class Accounts(StacklessTestCase):

    def test_a_created_account_checks_with_its_password_only(self):
        account_id = in_tasklet(accounts.create, "alice", "s3cret")
        stored, = db.query("SELECT password_hash FROM accounts WHERE id = ?", account_id)[0]
        self.assertTrue(stored.startswith("scrypt$n=16384,r=8,p=1$"))
        self.assertEqual(in_tasklet(accounts.check, "alice", "s3cret"), (account_id, None))
        self.assertEqual(in_tasklet(accounts.check, "alice", "S3cret"), (None, "wrong password"))
        self.assertEqual(in_tasklet(accounts.check, "nobody", "s3cret"), (None, "unknown account"))
        self.assertEqual(in_tasklet(accounts.check, "x" * 500, "s3cret"), (None, "unknown account"))

    def test_a_taken_or_malformed_name_is_refused(self):
        in_tasklet(accounts.create, "bob", "pw")
        with self.assertRaisesRegex(accounts.AccountError, "taken"):
            in_tasklet(accounts.create, "bob", "other")
        for name in ("", " bob", "a\nb", "n" * 65):
            with self.subTest(name=name), self.assertRaisesRegex(accounts.AccountError, "printable"):
                in_tasklet(accounts.create, name, "pw")

    def test_a_banned_account_is_refused_even_with_its_password(self):
        account_id = in_tasklet(accounts.create, "mallory", "pw")
        db.execute("UPDATE accounts SET banned = TRUE WHERE id = ?", account_id)
        self.assertEqual(in_tasklet(accounts.check, "mallory", "pw"), (None, "banned"))

    def test_the_hash_runs_off_the_loop_other_tasklets_go_on(self):
        ran = []

        def other():
            while True:
                ran.append(1)
                uthread.Sleep(0.001)

        ticker = uthread.new(other)
        try:
            in_tasklet(accounts.check, "nobody", "pw")
        finally:
            ticker.kill()
        self.assertGreater(len(ran), 1)


class Cli(unittest.TestCase):

    def cli(self, *args, password="from-stdin\n"):
        env = dict(os.environ, **client_env())
        env["SHARD_DB_DATABASE"] = DATABASE
        return subprocess.run([SHARD_BINARY, "python", CLI, *args], input=password, capture_output=True,
                              text=True, env=env, timeout=60)

    def test_create_then_check_and_change_the_password_from_stdin(self):
        done = self.cli("create", "carol")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertRegex(done.stdout, r"account carol created: id \d+")
        self.assertEqual(self.cli("check", "carol").returncode, 0)
        wrong = self.cli("check", "carol", password="nope\n")
        self.assertEqual((wrong.returncode, wrong.stderr.strip()), (1, "carol: wrong password"))
        self.assertEqual(self.cli("passwd", "carol", password="new\n").returncode, 0)
        self.assertEqual(self.cli("check", "carol", password="new\n").returncode, 0)
        self.assertEqual(self.cli("check", "carol").returncode, 1)
        taken = self.cli("create", "carol")
        self.assertEqual(taken.returncode, 1)
        self.assertIn("taken", taken.stderr)


if __name__ == "__main__":
    unittest.main()
