"""db: tasklets and the real MariaDB server (ops/mariadb.sh, started by ctest).

Every value round-trips through bound parameters; a query blocks only its
tasklet; transactions commit, roll back on an exception and on a kill; calls
have deadlines; a full pool makes callers wait (and time out); a server
restart gives a clear error, then the pool recovers.
"""

import datetime
import decimal
import time
import unittest

import db
import stackless
from dbsupport import after_others_ran, connect, run_tasklets, server
from support import StacklessTestCase, wait_until
from support import setUpModule as engine_setUpModule, tearDownModule as engine_tearDownModule

POOL_SIZE = 3


def setUpModule():
    engine_setUpModule()
    connect(pool_size=POOL_SIZE)
    db.execute("DROP TABLE IF EXISTS t_values")
    db.execute("""CREATE TABLE t_values (
        id INT AUTO_INCREMENT PRIMARY KEY, i BIGINT, u BIGINT UNSIGNED, f DOUBLE, d DECIMAL(30,10),
        s MEDIUMTEXT, b BLOB, dt DATETIME(6), dd DATE, tm TIME) CHARACTER SET utf8mb4""")
    db.execute("DROP TABLE IF EXISTS t_wallet")
    db.execute("CREATE TABLE t_wallet (id INT PRIMARY KEY, balance BIGINT NOT NULL) ENGINE=InnoDB")


def tearDownModule():
    try:
        db.execute("DROP TABLE IF EXISTS t_values")
        db.execute("DROP TABLE IF EXISTS t_wallet")
    finally:
        db.close()
        engine_tearDownModule()


class RoundTripTest(StacklessTestCase):

    # Written out: no SQL is formatted anywhere, not even with our own column names.
    STATEMENTS = {
        "i": ("INSERT INTO t_values (i) VALUES (?)", "SELECT i FROM t_values WHERE id = ?"),
        "u": ("INSERT INTO t_values (u) VALUES (?)", "SELECT u FROM t_values WHERE id = ?"),
        "f": ("INSERT INTO t_values (f) VALUES (?)", "SELECT f FROM t_values WHERE id = ?"),
        "d": ("INSERT INTO t_values (d) VALUES (?)", "SELECT d FROM t_values WHERE id = ?"),
        "s": ("INSERT INTO t_values (s) VALUES (?)", "SELECT s FROM t_values WHERE id = ?"),
        "b": ("INSERT INTO t_values (b) VALUES (?)", "SELECT b FROM t_values WHERE id = ?"),
        "dt": ("INSERT INTO t_values (dt) VALUES (?)", "SELECT dt FROM t_values WHERE id = ?"),
        "dd": ("INSERT INTO t_values (dd) VALUES (?)", "SELECT dd FROM t_values WHERE id = ?"),
        "tm": ("INSERT INTO t_values (tm) VALUES (?)", "SELECT tm FROM t_values WHERE id = ?"),
    }

    def round_trip(self, column, value):
        insert, select = self.STATEMENTS[column]
        done = db.execute(insert, value)
        self.assertEqual(done.rowcount, 1)
        self.assertGreater(done.lastrowid, 0)
        (row,) = db.query(select, done.lastrowid)
        return row[0]

    def test_integers_at_their_limits(self):
        for value in (0, -1, 2**63 - 1, -2**63):
            self.assertEqual(self.round_trip("i", value), value)
        self.assertEqual(self.round_trip("u", 2**64 - 1), 2**64 - 1)

    def test_doubles(self):
        for value in (0.0, 1.5, -2.25e300, 1e-300):
            self.assertEqual(self.round_trip("f", value), value)

    def test_decimals_are_exact(self):
        value = decimal.Decimal("12345678901234567890.0123456789")
        got = self.round_trip("d", value)
        self.assertIsInstance(got, decimal.Decimal)
        self.assertEqual(got, value)

    def test_strings_with_quotes_nuls_and_unicode(self):
        for value in ("", "it's", 'say "hi"', "back\\slash", "nul\0inside", "ünïcødé ✓ 🚀", "x" * 70000):
            self.assertEqual(self.round_trip("s", value), value)

    def test_blobs_with_every_byte(self):
        value = bytes(range(256)) * 4
        self.assertEqual(self.round_trip("b", value), value)
        self.assertEqual(self.round_trip("b", b""), b"")

    def test_null(self):
        for column in ("i", "f", "d", "s", "b", "dt", "dd", "tm"):
            self.assertIsNone(self.round_trip(column, None), column)

    def test_dates_and_times(self):
        moment = datetime.datetime(2024, 2, 29, 23, 59, 58, 123456)
        self.assertEqual(self.round_trip("dt", moment), moment)
        day = datetime.date(1999, 12, 31)
        self.assertEqual(self.round_trip("dd", day), day)

    def test_times_are_timedeltas_as_in_mysqldb(self):
        for value in (datetime.timedelta(0), datetime.timedelta(hours=838, minutes=59, seconds=59),
                      -datetime.timedelta(hours=838, minutes=59, seconds=59), datetime.timedelta(days=1, minutes=5),
                      -datetime.timedelta(seconds=1)):
            self.assertEqual(self.round_trip("tm", value), value)
        for value in (datetime.timedelta(seconds=1, microseconds=5), -datetime.timedelta(seconds=1.5)):
            self.assertEqual(db.query("SELECT CAST(? AS TIME(6))", value), [(value,)])
        self.assertEqual(db.query("SELECT CAST('-0:00:00.25' AS TIME(2))"), [(-datetime.timedelta(seconds=0.25),)])

    def test_decimals_at_their_edges(self):
        for text in ("0", "-0.0000000001", "0.0000000001", "-12.5", "99999999999999999999.9999999999",
                     "-99999999999999999999.9999999999"):
            value = decimal.Decimal(text)
            got = self.round_trip("d", value)
            self.assertIsInstance(got, decimal.Decimal)
            self.assertEqual(got, value, text)

    def test_nuls_at_the_ends_of_strings_and_blobs(self):
        for value in ("\0", "\0\0", "\0x", "x\0"):
            self.assertEqual(self.round_trip("s", value), value)
        for value in (b"\0", b"\0\0\0", b"abc\0\0", b"\0abc"):
            self.assertEqual(self.round_trip("b", value), value)

    def test_dates_at_the_ends_of_their_range(self):
        for moment in (datetime.datetime(1000, 1, 1), datetime.datetime(9999, 12, 31, 23, 59, 59, 999999),
                       datetime.datetime(2024, 1, 2, 3, 4, 5)):
            self.assertEqual(self.round_trip("dt", moment), moment)
        for day in (datetime.date(1000, 1, 1), datetime.date(9999, 12, 31), datetime.date(2024, 2, 29)):
            self.assertEqual(self.round_trip("dd", day), day)

    def test_named_rows(self):
        rows = db.query("SELECT 1 AS one, 'two' AS two", named=True)
        self.assertEqual(rows, [{"one": 1, "two": "two"}])

    def test_an_unbindable_parameter_is_a_type_error(self):
        with self.assertRaisesRegex(TypeError, "db parameter 2: cannot bind a object"):
            db.query("SELECT ?, ?", 1, object())


class QueryArgumentsTest(StacklessTestCase):
    """db.query is the native _db.query: its arguments behave as the Python
    signature query(sql, *params, timeout=DEFAULT_TIMEOUT, named=False) did."""

    def test_parameters_then_timeout_and_named_by_keyword(self):
        self.assertEqual(db.query("SELECT ? AS a, ? AS b", 1, "x", timeout=5, named=True), [{"a": 1, "b": "x"}])
        self.assertEqual(db.query("SELECT 2", named=False, timeout=5.5), [(2,)])

    def test_a_timeout_of_zero_means_none(self):
        self.assertEqual(db.query("SELECT 3", timeout=0), [(3,)])

    def test_a_timeout_keyword_still_stops_a_slow_query(self):
        with self.assertRaises(TimeoutError):
            db.query("SELECT SLEEP(2)", timeout=0.1)

    def test_wrong_arguments_are_type_errors(self):
        with self.assertRaisesRegex(TypeError, "unexpected keyword argument 'nmed'"):
            db.query("SELECT 1", nmed=True)
        with self.assertRaisesRegex(TypeError, "'sql'"):
            db.query()
        with self.assertRaisesRegex(TypeError, "'sql' must be str"):
            db.query(b"SELECT 1")
        with self.assertRaises(TypeError):
            db.query("SELECT 1", timeout="soon")

    def test_the_default_timeout_is_the_modules(self):
        self.assertEqual(db.DEFAULT_TIMEOUT, 30.0)


class HostileStringTest(StacklessTestCase):

    HOSTILE = [
        "'; DROP TABLE t_values; --",
        "' OR '1'='1",
        "\\'; SELECT 1; --",
        "\0'\"\\\x1a\n\r",
        "?",
        "%s %d {0}",
        "Robert'); DROP TABLE Students;--",
    ]

    def test_hostile_strings_are_data_not_sql(self):
        for value in self.HOSTILE:
            done = db.execute("INSERT INTO t_values (s) VALUES (?)", value)
            self.assertEqual(db.query("SELECT s FROM t_values WHERE id = ?", done.lastrowid), [(value,)])
            self.assertEqual(db.query("SELECT COUNT(*) FROM t_values WHERE s = ?", value)[0][0] >= 1, True)
        self.assertEqual(db.query("SELECT ? = 'x'", "' OR 1=1 --"), [(0,)])
        # The table survived every one of them.
        self.assertTrue(db.query("SELECT COUNT(*) FROM t_values")[0][0] >= len(self.HOSTILE))


class ErrorTest(StacklessTestCase):

    def test_a_server_error_carries_its_code_state_and_message(self):
        with self.assertRaises(db.Error) as caught:
            db.query("SELECT * FROM no_such_table")
        self.assertEqual(caught.exception.code, 1146)
        self.assertEqual(caught.exception.sqlstate, "42S02")
        self.assertIn("no_such_table", caught.exception.message)
        self.assertIn("[1146]", str(caught.exception))

    def test_a_syntax_error(self):
        with self.assertRaises(db.Error) as caught:
            db.execute("THIS IS NOT SQL")
        self.assertEqual(caught.exception.code, 1064)

    def test_the_pool_still_works_after_errors(self):
        for _ in range(2 * POOL_SIZE):
            with self.assertRaises(db.Error):
                db.query("SELECT * FROM no_such_table")
        self.assertEqual(db.query("SELECT 7"), [(7,)])


class BlockingTest(StacklessTestCase):

    def test_only_the_calling_tasklet_waits(self):
        ticks = []

        def sleeper():
            return db.query("SELECT SLEEP(0.5)")

        def ticker():
            end = time.monotonic() + 0.4
            while time.monotonic() < end:
                ticks.append(1)
                stackless.schedule()  # runs while the query is in flight
            return len(ticks)

        start = time.monotonic()
        slept, ticked = run_tasklets(sleeper, ticker)
        self.assertEqual(slept, [(0,)])
        self.assertGreater(ticked, 100)
        self.assertLess(time.monotonic() - start, 2.0)

    def test_queries_of_many_tasklets_overlap_up_to_the_pool_size(self):
        start = time.monotonic()
        results = run_tasklets(*[lambda: db.query("SELECT SLEEP(0.5)")] * POOL_SIZE)
        elapsed = time.monotonic() - start
        self.assertEqual(results, [[(0,)]] * POOL_SIZE)
        self.assertLess(elapsed, 0.5 * (POOL_SIZE - 0.5), "the queries ran one after the other")


class DeadlineTest(StacklessTestCase):

    def test_a_call_past_its_deadline_raises_timeout_error(self):
        start = time.monotonic()
        with self.assertRaises(TimeoutError):
            db.query("SELECT SLEEP(2)", timeout=0.2)
        self.assertLess(time.monotonic() - start, 1.0)
        # The connection comes back once the query ends; the pool serves on.
        self.assertEqual(db.query("SELECT 1"), [(1,)])

    def test_pool_exhaustion_makes_callers_wait_then_time_out(self):
        txs = [db.transaction().begin() for _ in range(POOL_SIZE)]
        try:
            self.assertEqual(db.stats()["transactions"], POOL_SIZE)
            with self.assertRaises(TimeoutError):
                db.query("SELECT 1", timeout=0.3)
            waiting = []

            def waiter():
                return db.query("SELECT 2")

            def observer():
                wait_until(lambda: db.stats()["waiting"] == 1, what="the waiter queued")
                waiting.append(True)
                txs.pop().commit()  # a connection comes free: the waiter runs

            results = run_tasklets(waiter, observer)
            self.assertEqual(results[0], [(2,)])
            self.assertEqual(waiting, [True])
        finally:
            for tx in txs:
                tx.rollback()
        wait_until(lambda: db.stats()["transactions"] == 0, what="the rollbacks")


    def test_a_caller_killed_while_waiting_for_a_connection_leaves_no_pinned_one(self):
        txs = [db.transaction().begin() for _ in range(POOL_SIZE)]
        try:
            def late():
                with db.transaction() as tx:  # waits: every connection is pinned
                    tx.execute("SELECT 1")

            t = stackless.tasklet(late)()
            wait_until(lambda: after_others_ran(lambda: db.stats()["waiting"] == 1), what="the begin queued")
            t.kill()
            self.assertEqual(db.stats()["waiting"], 0, "the abandoned begin still holds its place")
        finally:
            for tx in txs:
                tx.rollback()
        wait_until(lambda: db.stats()["transactions"] == 0, what="the rollbacks")
        self.assertEqual(db.query("SELECT 3"), [(3,)])
        self.assertEqual(db.stats()["transactions"], 0)


class TransactionTest(StacklessTestCase):

    def setUp(self):
        super().setUp()
        db.execute("DELETE FROM t_wallet")
        db.execute("INSERT INTO t_wallet VALUES (1, 100), (2, 0)")

    def balances(self):
        return db.query("SELECT id, balance FROM t_wallet ORDER BY id")

    def test_commit_on_success(self):
        with db.transaction() as tx:
            tx.execute("UPDATE t_wallet SET balance = balance - ? WHERE id = ?", 30, 1)
            tx.execute("UPDATE t_wallet SET balance = balance + ? WHERE id = ?", 30, 2)
            self.assertEqual(tx.query("SELECT balance FROM t_wallet WHERE id = 1"), [(70,)])
        self.assertEqual(self.balances(), [(1, 70), (2, 30)])

    def test_rollback_on_exception(self):
        with self.assertRaises(ZeroDivisionError):
            with db.transaction() as tx:
                tx.execute("UPDATE t_wallet SET balance = balance - ? WHERE id = ?", 30, 1)
                1 / 0
        wait_until(lambda: db.stats()["transactions"] == 0, what="the rollback")
        self.assertEqual(self.balances(), [(1, 100), (2, 0)])

    def test_rollback_on_kill(self):
        reached = []

        def spender():
            with db.transaction() as tx:
                tx.execute("UPDATE t_wallet SET balance = balance - ? WHERE id = ?", 30, 1)
                reached.append(True)
                tx.query("SELECT SLEEP(5)")  # killed while waiting here
                tx.execute("UPDATE t_wallet SET balance = balance + ? WHERE id = ?", 30, 2)

        t = stackless.tasklet(spender)()
        wait_until(lambda: after_others_ran(lambda: reached), what="the first update")
        t.kill()
        self.assertFalse(t.alive)
        # The sleep is stopped on the server (KILL QUERY): the rollback, queued
        # behind it on the same connection, follows at once.
        wait_until(lambda: db.stats()["transactions"] == 0, timeout=2, what="the rollback")
        self.assertEqual(self.balances(), [(1, 100), (2, 0)])

    def test_the_transaction_sees_its_own_writes_others_do_not(self):
        with db.transaction() as tx:
            tx.execute("UPDATE t_wallet SET balance = ? WHERE id = ?", 5, 1)
            self.assertEqual(db.query("SELECT balance FROM t_wallet WHERE id = 1"), [(100,)])
            self.assertEqual(tx.query("SELECT balance FROM t_wallet WHERE id = 1"), [(5,)])
            tx.rollback()
        self.assertEqual(self.balances(), [(1, 100), (2, 0)])

    def test_a_finished_transaction_refuses_statements(self):
        tx = db.transaction().begin()
        tx.commit()
        with self.assertRaisesRegex(RuntimeError, "no transaction"):
            tx.query("SELECT 1")


class ConnectionTest(StacklessTestCase):

    def test_a_transaction_keeps_one_connection_while_others_query(self):
        others = []

        def other():
            for _ in range(5):
                others.append(db.query("SELECT CONNECTION_ID()")[0][0])

        with db.transaction() as tx:
            mine = tx.query("SELECT CONNECTION_ID()")[0][0]
            run_tasklets(other, other)
            for _ in range(5):
                self.assertEqual(tx.query("SELECT CONNECTION_ID()")[0][0], mine)
        self.assertNotIn(mine, others, "another caller ran on the pinned connection")

    def test_queries_reach_the_free_connections_while_others_are_pinned(self):
        # The database threads share one condition variable: a new job woke
        # one of them, and when that was a pinned one, it slept on and the job
        # waited for its deadline.
        txs = [db.transaction().begin() for _ in range(POOL_SIZE - 1)]
        try:
            for n in range(300):
                self.assertEqual(db.query("SELECT ?", n, timeout=2), [(n,)])
        finally:
            for tx in txs:
                tx.rollback()
        wait_until(lambda: db.stats()["transactions"] == 0, what="the rollbacks")

    def test_a_statement_is_prepared_once_per_connection(self):
        def prepares(tx):
            (row,) = tx.query("SHOW SESSION STATUS LIKE 'Com_stmt_prepare'")
            return int(row[1])

        with db.transaction() as tx:  # one connection: its session's counters
            prepares(tx)  # the status query itself is prepared here, once
            before = prepares(tx)
            for n in range(5):
                self.assertEqual(tx.query("SELECT ? + 1", n), [(n + 1,)])
            self.assertEqual(prepares(tx) - before, 1)


class StatsTest(StacklessTestCase):

    def test_stats_count_queries_errors_and_latency(self):
        before = db.stats()
        db.query("SELECT 1")
        with self.assertRaises(db.Error):
            db.query("SELECT * FROM no_such_table")
        after = db.stats()
        self.assertEqual(after["size"], POOL_SIZE)
        self.assertEqual(after["queries"] - before["queries"], 2)
        self.assertEqual(after["errors"] - before["errors"], 1)
        self.assertGreater(after["latency_count"], before["latency_count"])
        self.assertGreater(after["latency_max_s"], 0)


class RestartTest(StacklessTestCase):
    deadline_s = 60

    def test_server_restart_gives_a_clear_error_then_recovers(self):
        self.assertEqual(db.query("SELECT 1"), [(1,)])
        server("stop")
        try:
            with self.assertRaises(db.Error) as caught:
                db.query("SELECT 1")
            self.assertIn(caught.exception.code, (2002, 2003, 2006, 2013))
        finally:
            server("start")
        # A stale connection's first query (2006) is retried on a new one.
        for _ in range(2 * POOL_SIZE):
            self.assertEqual(db.query("SELECT 1"), [(1,)])
        self.assertGreater(db.stats()["disconnects"], 0)

    def test_after_a_restart_every_idle_connection_is_made_again_before_use(self):
        # Every connection of the pool at once: one transaction each.
        txs = [db.transaction().begin() for _ in range(POOL_SIZE)]
        for tx in txs:
            tx.commit()
        server("restart")
        time.sleep(1.1)  # idle past the check: pinged, found dead, made again
        txs = [db.transaction().begin() for _ in range(POOL_SIZE)]
        try:
            for tx in txs:
                self.assertEqual(tx.execute("UPDATE t_wallet SET balance = balance WHERE id = ?", 1).rowcount, 0)
        finally:
            for tx in txs:
                tx.rollback()
        wait_until(lambda: db.stats()["transactions"] == 0, what="the rollbacks")

    def test_a_transaction_whose_connection_is_lost_fails_until_rolled_back(self):
        with self.assertRaises(db.Error) as lost:
            with db.transaction() as tx:
                tx.query("SELECT 1")
                server("restart")
                with self.assertRaises(db.Error) as first:
                    tx.query("SELECT 1")
                self.assertIn(first.exception.code, (2006, 2013))
                tx.query("SELECT 1")  # the transaction is gone: every later statement says so
        self.assertEqual(lost.exception.code, db.TRANSACTION_LOST)
        wait_until(lambda: db.stats()["transactions"] == 0, what="the rollback")
        self.assertEqual(db.query("SELECT 1"), [(1,)])


if __name__ == "__main__":
    unittest.main()
