"""db: the pool under pressure, against the real MariaDB (ops/mariadb.sh).

A statement whose caller gave up (its deadline passed, or its tasklet was
killed) is stopped on the server with KILL QUERY, and its connection serves
the next caller at once; more callers than connections take their turns and
keep their own deadlines; a server restart in the middle of a query gives
its caller a clear error, and the pool recovers.
"""

import time
import unittest

import db
import stackless
from dbsupport import after_others_ran, connect, run_tasklets, server
from support import StacklessTestCase, wait_until
from support import setUpModule as engine_setUpModule, tearDownModule as engine_tearDownModule

POOL_SIZE = 3
LONG_SLEEP = "SELECT SLEEP(30)"


def setUpModule():
    engine_setUpModule()
    connect(pool_size=POOL_SIZE)


def tearDownModule():
    try:
        db.close()
    finally:
        engine_tearDownModule()


def running_on_server(sql):
    """How many connections run exactly `sql` now (this query is not one of them)."""
    return db.query("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO = ?", sql)[0][0]


class KillQueryTest(StacklessTestCase):
    deadline_s = 45  # room for tearDown's wait, should a sleep run on to its end

    def tearDown(self):
        # Whatever a failure left running must not hold the next test's connections.
        wait_until(lambda: db.stats()["in_use"] == 0, timeout=35, what="the pool idle again")
        super().tearDown()

    def test_a_query_past_its_deadline_is_stopped_on_the_server_and_frees_its_connection(self):
        kills = db.stats()["kills"]
        # Every connection of the pool in a long sleep whose caller gives up.
        results = run_tasklets(*[lambda: db.query(LONG_SLEEP, timeout=0.5)] * POOL_SIZE)
        self.assertTrue(all(isinstance(r, TimeoutError) for r in results), results)
        given_up = time.monotonic()
        # Left to run, the sleeps would hold every connection for 30 s; a
        # loaded machine may take seconds to kill them, never 30.
        self.assertEqual(db.query("SELECT 1", timeout=10), [(1,)])
        # A kill that landed before its statement reached the server is sent again.
        wait_until(lambda: running_on_server(LONG_SLEEP) == 0, timeout=10, what="the sleeps stopped")
        self.assertLess(time.monotonic() - given_up, 10)
        self.assertGreaterEqual(db.stats()["kills"] - kills, POOL_SIZE)
        self.assertEqual(db.stats()["disconnects"], 0, "a killed query must not cost its connection")

    def test_a_caller_killed_in_a_query_stops_it_on_the_server(self):
        kills = db.stats()["kills"]
        sleeping = POOL_SIZE - 1  # one connection left to watch the processlist with
        sleepers = [stackless.tasklet(db.query)(LONG_SLEEP) for _ in range(sleeping)]
        wait_until(lambda: after_others_ran(lambda: running_on_server(LONG_SLEEP) == sleeping),
                   what="the sleeps running on the server")
        for t in sleepers:
            t.kill()
        self.assertFalse(any(t.alive for t in sleepers))
        killed = time.monotonic()
        # Left to run, the sleeps would hold their connections for 30 s; a
        # loaded machine may take seconds to kill them, never 30.
        wait_until(lambda: db.stats()["in_use"] == 0, timeout=10, what="the killed sleeps' connections back")
        self.assertLess(time.monotonic() - killed, 10)
        wait_until(lambda: running_on_server(LONG_SLEEP) == 0, timeout=10, what="the sleeps stopped")
        self.assertGreaterEqual(db.stats()["kills"] - kills, sleeping)
        self.assertEqual(db.query("SELECT 2"), [(2,)])

    def test_a_killed_statement_in_a_transaction_lets_its_rollback_run_at_once(self):
        def spender():
            with db.transaction() as tx:
                tx.execute("DO SLEEP(30)", timeout=0.5)

        start = time.monotonic()
        (result,) = run_tasklets(spender)
        self.assertIsInstance(result, TimeoutError)
        # The rollback waited behind the sleep on the pinned connection: the
        # sleep's 30 s unless it was killed; a loaded machine takes seconds.
        wait_until(lambda: db.stats()["transactions"] == 0, timeout=10, what="the rollback")
        self.assertLess(time.monotonic() - start, 10.5)


class ExhaustionTest(StacklessTestCase):

    def test_more_callers_than_connections_take_turns_and_keep_their_deadlines(self):
        events = []

        def patient(n):
            db.query("SELECT SLEEP(1)", timeout=10)
            events.append(("done", n))

        def hasty(n):
            try:
                db.query("SELECT SLEEP(1)", timeout=0.2)
            except TimeoutError:
                events.append(("timed out", n))

        # Two waves of patient callers; the hasty ones queue behind them.
        funcs = [lambda n=n: patient(n) for n in range(2 * POOL_SIZE)] + [lambda n=n: hasty(n) for n in range(2)]
        start = time.monotonic()
        results = run_tasklets(*funcs)
        elapsed = time.monotonic() - start
        self.assertEqual(results, [None] * len(funcs))
        # The hasty ones gave up while the first wave still ran: they never got a connection.
        self.assertEqual(events[:2], [("timed out", 0), ("timed out", 1)])
        done = [n for what, n in events if what == "done"]
        # First come, first served: the first wave is the first POOL_SIZE callers.
        self.assertEqual(sorted(done[:POOL_SIZE]), list(range(POOL_SIZE)))
        self.assertEqual(sorted(done[POOL_SIZE:]), list(range(POOL_SIZE, 2 * POOL_SIZE)))
        self.assertGreater(elapsed, 1.9, "more statements ran at once than there are connections")
        self.assertEqual(db.stats()["waiting"], 0)


class UrgentTest(StacklessTestCase):

    def test_an_urgent_call_goes_ahead_of_the_calls_waiting_for_a_connection(self):
        # The order the statements ran in, by the server's AUTO_INCREMENT (the
        # order results reach their tasklets is the delivery's, not the queue's).
        db.execute("DROP TABLE IF EXISTS urgent_order")
        db.execute("CREATE TABLE urgent_order (id INT AUTO_INCREMENT PRIMARY KEY, who VARCHAR(16) NOT NULL)")
        self.addCleanup(db.execute, "DROP TABLE urgent_order")
        insert = "INSERT INTO urgent_order (who) VALUES (?)"
        # Every connection made and working first (an earlier test restarts the server).
        self.assertEqual(run_tasklets(*[lambda: db.query("SELECT 1")] * POOL_SIZE), [[(1,)]] * POOL_SIZE)

        results = {}

        def call(name, func):
            def body():
                try:
                    results[name] = func()
                except Exception as e:  # reported below
                    results[name] = e
            return stackless.tasklet(body)()

        # Every connection busy until the test frees one, then callers queue:
        # normal ones, then an urgent one. Once all four wait, one connection
        # is freed (its caller killed: KILL QUERY) and serves the queue, one
        # call after the other, while the others stay busy. Step by step: a
        # busy query of a fixed 0.5 s ended before the queue had formed when a
        # loaded machine stalled the callers.
        busy = [call("busy%d" % n, lambda: db.query(LONG_SLEEP)) for n in range(POOL_SIZE)]
        # Taken by every database thread before anyone queues (a thread slow
        # to wake would otherwise serve the urgent call before its busy one).
        wait_until(lambda: after_others_ran(lambda: (db.stats()["in_use"], db.stats()["waiting"]) == (POOL_SIZE, 0)),
                   what="every connection busy")
        callers = [call("normal%d" % n, lambda n=n: db.execute(insert, "normal%d" % n)) for n in range(3)]
        callers.append(call("urgent", lambda: db.execute(insert, "urgent", urgent=True)))
        wait_until(lambda: after_others_ran(lambda: db.stats()["waiting"] == 4), what="four calls waiting")
        busy[0].kill()
        wait_until(lambda: after_others_ran(lambda: not any(t.alive for t in callers)), timeout=10,
                   what="the waiting calls served by the freed connection")
        for t in busy[1:]:
            t.kill()
        wait_until(lambda: db.stats()["in_use"] == 0, timeout=10, what="the pool idle again")
        self.assertEqual({name: r for name, r in results.items() if isinstance(r, Exception)}, {})
        self.assertEqual([who for (who,) in db.query("SELECT who FROM urgent_order ORDER BY id")][0], "urgent")

    def test_the_native_query_takes_urgent_too(self):
        self.assertEqual(db.query("SELECT ?", 5, urgent=True), [(5,)])
        with self.assertRaisesRegex(TypeError, "unexpected keyword argument 'urgen'"):
            db.query("SELECT 1", urgen=True)


class RestartMidQueryTest(StacklessTestCase):
    deadline_s = 60

    def test_a_server_restart_mid_query_gives_a_clear_error_then_recovers(self):
        outcome = []

        def sleeper():
            try:
                outcome.append(db.query("SELECT SLEEP(20)"))
            except db.Error as e:
                outcome.append(e)

        stackless.tasklet(sleeper)()
        wait_until(lambda: after_others_ran(lambda: running_on_server("SELECT SLEEP(20)") == 1),
                   what="the sleep running")
        # Timed from the restart's end: the restart itself (a blocking stop
        # and start of the server) takes seconds on a loaded machine. The
        # connection died with the server: a clear error at once, never the
        # sleep's 20 s or a hang.
        server("restart")
        restarted = time.monotonic()
        wait_until(lambda: after_others_ran(lambda: outcome), timeout=10, what="the sleeper's error")
        self.assertLess(time.monotonic() - restarted, 10)
        # Lost mid-query (2013), or told of the shutdown (1053) before the connection closed.
        self.assertIsInstance(outcome[0], db.Error)
        self.assertIn(outcome[0].code, (2013, 1053, 2006, 1927), str(outcome[0]))
        for _ in range(2 * POOL_SIZE):
            self.assertEqual(db.query("SELECT 1"), [(1,)])


if __name__ == "__main__":
    unittest.main()
