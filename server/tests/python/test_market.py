"""The market's transactions against the private MariaDB (ctest's `mariadb`
fixture), in this process: matching in price-time priority, partial fills,
money conserved, a request that cannot pay changing nothing, retried
request_ids answered once, a killed tasklet's request rolled back,
concurrent placers, deadlocks and lock waits retried, one book's requests
taking turns in this process (market_turns), hostile arguments.

Races are made deterministic with a gate: a transaction of the test holds a
row lock the market needs, the placers are seen waiting on it (the server's
process list), and only then is the gate opened."""

import contextlib
import itertools
import json
import os
import random
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "engine", "tests", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "db", "tests", "python"))

import db  # noqa: E402
import market_ledger  # noqa: E402
import market_matching  # noqa: E402
import market_support  # noqa: E402
import market_turns  # noqa: E402
import stackless  # noqa: E402
import uthread  # noqa: E402
from cluster_support import Cluster  # noqa: E402
from dbsupport import after_others_ran, connect, run_tasklets  # noqa: E402
from market_wallets import InsufficientFunds, LOCK_WAIT_S  # noqa: E402
from support import StacklessTestCase, wait_until  # noqa: E402

REGION, OTHER_REGION = 10000001, 10000002
SYSTEM, OTHER_SYSTEM = 30000001, 30000002  # one in each region
TRITANIUM, PYERITE = 34, 35

cluster = Cluster("shard_test_market")
_ids = itertools.count(1)


def setUpModule():
    cluster.set_up()
    db.close()
    connect(pool_size=6, database=cluster.database)  # placers, the gate and the test's own queries at once
    for region in (REGION, OTHER_REGION):
        db.execute("INSERT INTO regions (id, name) VALUES (?, ?)", region, "R-%d" % region)
    for system, region in ((SYSTEM, REGION), (OTHER_SYSTEM, OTHER_REGION)):
        db.execute("INSERT INTO solar_systems (id, name, security, x, y, z, region_id) VALUES (?, ?, 0.5, 0, 0, 0, ?)",
                   system, "S-%d" % system, region)
    # The accounts' passwords play no part here: the market needs characters only.
    db.execute("INSERT INTO accounts (name, password_hash) VALUES ('traders', 'not a hash')")


def tearDownModule():
    cluster.tear_down()


def waiting(fragment):
    """How many statements containing `fragment` the server is running now
    (a statement still running after the test saw it is waiting on a lock)."""
    (count,), = db.query("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE ?"
                         " AND INFO NOT LIKE '%PROCESSLIST%'", "%" + fragment + "%")
    return count


def wait_for_waiters(fragment, count):
    wait_until(lambda: after_others_ran(lambda: waiting(fragment) >= count), timeout=20,
               what="%d statements waiting on %r" % (count, fragment))


ORDER_WRITE = "FROM market_orders WHERE id"  # a filled order deleted
REQUEST_INSERT = "INSERT INTO market_requests"


class MarketTestCase(StacklessTestCase):
    deadline_s = 120

    def setUp(self):
        super().setUp()
        market_support.empty_market()
        self.funded = {}
        self.retries_before = market_ledger.stats["retries"]

    def tearDown(self):
        wait_until(lambda: after_others_ran(lambda: db.stats()["transactions"] == 0), what="every transaction ended")
        market_support.audit(self, self.funded)
        super().tearDown()

    def character(self, balance=0):
        n = next(_ids)
        character = db.execute("INSERT INTO characters (account_id, name) SELECT id, ? FROM accounts"
                               " WHERE name = 'traders'", "trader-%d" % n).lastrowid
        db.execute("INSERT INTO wallets (character_id, balance) VALUES (?, ?)", character, balance)
        self.funded[character] = balance
        return character

    def place(self, who, side, type_id, quantity, price, request_id=None, region=REGION, system=SYSTEM):
        request_id = request_id or "r-%d" % next(_ids)
        return market_ledger.place(who, region, system, side, type_id, quantity, price, request_id).answer

    def balance(self, who):
        return market_ledger.balance(who)

    def snapshot(self):
        """Every market row there is, for "nothing changed"."""
        return [db.query("SELECT * FROM " + table + " ORDER BY 1") for table in
                ("wallets", "market_orders", "market_trades", "wallet_transactions", "market_requests")]

    def as_separate_nodes(self):
        """From here on, this process's placers meet in the database as the
        placers of different nodes do: market_turns no longer orders them."""
        for name in ("turn", "sole_send"):
            self.addCleanup(setattr, market_turns, name, getattr(market_turns, name))
            setattr(market_turns, name, lambda *args, **kwargs: contextlib.nullcontext())

    def gate(self, sql, *params):
        """A transaction of the test holding the rows `sql` locks; rollback() opens it."""
        tx = db.transaction().begin()
        self.addCleanup(tx.rollback)
        self.assertTrue(tx.query(sql, *params))
        return tx


class MatchingTest(MarketTestCase):

    def test_a_buy_takes_the_cheapest_sells_first_and_the_oldest_at_one_price(self):
        a, b, c = self.character(), self.character(), self.character()
        buyer = self.character(10_000)
        first = self.place(a, "sell", TRITANIUM, 5, 10)["order_id"]
        self.place(b, "sell", TRITANIUM, 5, 9)
        self.place(c, "sell", TRITANIUM, 5, 9)
        self.place(a, "sell", TRITANIUM, 5, 8, region=OTHER_REGION, system=OTHER_SYSTEM)  # another region's market
        answer = self.place(buyer, "buy", TRITANIUM, 12, 10)
        self.assertEqual(answer, {"order_id": None, "filled": 12, "remaining": 0,
                                  "trades": [{"price": 9, "quantity": 5}, {"price": 9, "quantity": 5},
                                             {"price": 10, "quantity": 2}]})
        self.assertEqual([self.balance(x) for x in (a, b, c, buyer)], [20, 45, 45, 10_000 - 110])
        self.assertEqual(market_ledger.book(REGION, TRITANIUM), {"buy": [], "sell": [[10, 3]]})
        self.assertEqual([(o["order_id"], o["quantity"], o["quantity_entered"]) for o in market_ledger.my_orders(a)
                          if o["region_id"] == REGION], [(first, 3, 5)])

    def test_a_sell_takes_the_highest_buys_first_and_what_is_left_rests(self):
        a, b = self.character(1_000), self.character(1_000)
        seller = self.character()
        low = self.place(a, "buy", TRITANIUM, 4, 10)["order_id"]
        self.place(b, "buy", TRITANIUM, 3, 12)
        self.assertEqual((self.balance(a), self.balance(b)), (960, 964))  # the escrow left the wallets
        answer = self.place(seller, "sell", TRITANIUM, 10, 10)
        self.assertEqual(answer["trades"], [{"price": 12, "quantity": 3}, {"price": 10, "quantity": 4}])
        self.assertEqual((answer["filled"], answer["remaining"]), (7, 3))
        self.assertIsNotNone(answer["order_id"])
        self.assertEqual(self.balance(seller), 76)
        self.assertEqual(market_ledger.book(REGION, TRITANIUM), {"buy": [], "sell": [[10, 3]]})
        self.assertEqual([o["order_id"] for o in market_ledger.my_orders(a)], [])
        history = market_ledger.history(a)
        self.assertEqual([(h["amount"], h["reason"], h["order_id"]) for h in history],
                         [(-40, "market buy", low), (40, "market escrow release", low), (-40, "market escrow", low)])

    def test_a_partly_filled_buy_keeps_escrow_for_what_is_left_and_a_cancel_returns_it(self):
        seller, buyer = self.character(), self.character(1_000)
        self.place(seller, "sell", PYERITE, 2, 7)
        answer = self.place(buyer, "buy", PYERITE, 10, 9)
        self.assertEqual((answer["filled"], answer["remaining"]), (2, 8))
        self.assertEqual(self.balance(buyer), 1_000 - 14 - 72)
        (order,) = market_ledger.my_orders(buyer)
        self.assertEqual((order["side"], order["quantity"], order["escrow"]), ("buy", 8, 72))
        cancelled = market_ledger.cancel(buyer, answer["order_id"], "c-1").answer
        self.assertEqual(cancelled, {"order_id": answer["order_id"], "cancelled": 8})
        self.assertEqual(self.balance(buyer), 1_000 - 14)
        self.assertEqual(market_ledger.cancel(buyer, answer["order_id"], "c-1").answer, cancelled)  # a retry
        with self.assertRaisesRegex(LookupError, "no open order"):
            market_ledger.cancel(buyer, answer["order_id"], "c-2")

    def test_only_ones_own_order_can_be_cancelled(self):
        owner, other = self.character(), self.character()
        order = self.place(owner, "sell", TRITANIUM, 1, 5)["order_id"]
        with self.assertRaisesRegex(LookupError, "no open order %d of yours" % order):
            market_ledger.cancel(other, order, "mine now")
        self.assertEqual(market_ledger.book(REGION, TRITANIUM)["sell"], [[5, 1]])

    def test_a_trade_with_ones_own_order_moves_no_money(self):
        trader = self.character(100)
        self.place(trader, "sell", TRITANIUM, 3, 10)
        answer = self.place(trader, "buy", TRITANIUM, 3, 10)
        self.assertEqual(answer["filled"], 3)
        self.assertEqual(self.balance(trader), 100)

    def bounded(self, name, value):
        """market_matching's bound `name` lowered to `value` for this test."""
        self.addCleanup(setattr, market_matching, name, getattr(market_matching, name))
        setattr(market_matching, name, value)

    def test_a_request_takes_at_most_max_fills_orders_and_leaves_the_rest_unplaced(self):
        self.bounded("MAX_FILLS", 3)
        seller, buyer = self.character(), self.character(1_000)
        for _ in range(5):
            self.place(seller, "sell", TRITANIUM, 1, 10)
        answer = self.place(buyer, "buy", TRITANIUM, 5, 10)
        self.assertEqual((answer["order_id"], answer["filled"], answer["remaining"]), (None, 3, 2))
        self.assertEqual(market_ledger.book(REGION, TRITANIUM), {"buy": [], "sell": [[10, 2]]})
        self.assertEqual(self.balance(buyer), 970)  # no escrow: nothing rests

    def test_an_order_past_the_open_orders_bound_is_refused_and_changes_nothing(self):
        self.bounded("MAX_OPEN_ORDERS", 2)
        trader, other = self.character(1_000), self.character()
        self.place(other, "sell", TRITANIUM, 1, 50)
        self.place(trader, "buy", TRITANIUM, 1, 5)
        self.place(trader, "sell", PYERITE, 1, 5)
        before = self.snapshot()
        with self.assertRaisesRegex(ValueError, "too many open orders"):
            self.place(trader, "buy", TRITANIUM, 2, 50)  # its fill rolls back with it
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.place(trader, "buy", TRITANIUM, 1, 50)["filled"], 1)  # nothing rests: allowed

    def test_money_is_conserved_over_many_random_orders(self):
        rng = random.Random(11)
        traders = [self.character(rng.randrange(1_000, 5_000)) for _ in range(4)]
        placed = 0
        for _ in range(60):
            who = rng.choice(traders)
            if rng.random() < 0.15:
                orders = market_ledger.my_orders(who)
                if orders:
                    market_ledger.cancel(who, rng.choice(orders)["order_id"], "c-%d" % next(_ids))
                continue
            try:
                self.place(who, rng.choice(("buy", "sell")), TRITANIUM, rng.randrange(1, 20), rng.randrange(90, 110))
                placed += 1
            except InsufficientFunds:
                pass
            self.assertEqual(market_support.totals(), sum(self.funded.values()))
        self.assertGreater(db.query("SELECT COUNT(*) FROM market_trades")[0][0], 10)
        self.assertGreater(placed, 30)


class FailureTest(MarketTestCase):

    def test_a_buy_that_cannot_pay_changes_nothing(self):
        a, b = self.character(), self.character()
        buyer = self.character(60)
        self.place(a, "sell", TRITANIUM, 5, 10)
        self.place(b, "sell", TRITANIUM, 5, 11)
        before = self.snapshot()
        # The first fill (50) is affordable, the second (55 more) is not: all of it rolls back.
        with self.assertRaisesRegex(InsufficientFunds, "the wallet holds 60, this order needs at least 105"):
            self.place(buyer, "buy", TRITANIUM, 10, 11, request_id="too dear")
        self.assertEqual(self.snapshot(), before)
        # Nothing was stored for the request: once the money is there, its retry runs.
        db.execute("UPDATE wallets SET balance = balance + 100 WHERE character_id = ?", buyer)
        self.funded[buyer] += 100
        self.assertEqual(self.place(buyer, "buy", TRITANIUM, 10, 11, request_id="too dear")["filled"], 10)

    def test_a_buy_that_cannot_pay_its_escrow_changes_nothing(self):
        buyer = self.character(99)
        before = self.snapshot()
        with self.assertRaises(InsufficientFunds):
            self.place(buyer, "buy", TRITANIUM, 10, 10)
        self.assertEqual(self.snapshot(), before)

    def test_a_killed_tasklet_leaves_nothing_of_its_request(self):
        seller, buyer = self.character(), self.character(1_000)
        order = self.place(seller, "sell", TRITANIUM, 5, 10)["order_id"]
        before = self.snapshot()
        gate = self.gate("SELECT id FROM market_orders WHERE id = ? FOR UPDATE", order)
        placer = stackless.tasklet(self.place)(buyer, "buy", TRITANIUM, 5, 10, "killed")
        wait_for_waiters(ORDER_WRITE, 1)  # the request row and the buyer's wallet are taken: mid-transaction
        placer.kill()
        gate.rollback()
        wait_until(lambda: after_others_ran(lambda: db.stats()["transactions"] == 0), what="the rollbacks")
        self.assertEqual(self.snapshot(), before)
        self.assertEqual(self.place(buyer, "buy", TRITANIUM, 5, 10, "killed")["filled"], 5)


class IdempotencyTest(MarketTestCase):

    def test_a_retried_request_id_returns_the_first_answer_and_changes_nothing(self):
        seller, buyer = self.character(), self.character(1_000)
        self.place(seller, "sell", TRITANIUM, 5, 10)
        first = self.place(buyer, "buy", TRITANIUM, 5, 10, request_id="once")
        self.place(seller, "sell", TRITANIUM, 5, 10)  # the retry would trade with this one
        before = self.snapshot()
        self.assertEqual(self.place(buyer, "buy", TRITANIUM, 5, 10, request_id="once"), first)
        self.assertEqual(self.snapshot(), before)
        # Request ids are the character's own, compared byte for byte.
        self.assertEqual(self.place(buyer, "buy", TRITANIUM, 1, 1, request_id="ONCE")["filled"], 0)
        self.assertEqual(self.place(buyer, "buy", TRITANIUM, 1, 1, request_id="once ")["filled"], 0)
        other = self.character(1_000)
        self.assertEqual(self.place(other, "buy", TRITANIUM, 8, 10, request_id="once")["filled"], 5)

    def test_a_request_id_reused_for_another_request_is_refused(self):
        trader = self.character(1_000)
        self.place(trader, "buy", TRITANIUM, 1, 5, request_id="mine")
        before = self.snapshot()
        with self.assertRaisesRegex(ValueError, "already used for another request"):
            self.place(trader, "buy", TRITANIUM, 2, 5, request_id="mine")
        with self.assertRaisesRegex(ValueError, "already used for another request"):
            market_ledger.cancel(trader, 1, "mine")
        self.assertEqual(self.snapshot(), before)

    def test_a_retry_racing_the_first_gets_its_answer_and_trades_once(self):
        self.as_separate_nodes()  # the retry reached another sol
        seller, buyer = self.character(), self.character(1_000)
        order = self.place(seller, "sell", TRITANIUM, 5, 10)["order_id"]
        self.place(seller, "sell", TRITANIUM, 5, 10)
        gate = self.gate("SELECT id FROM market_orders WHERE id = ? FOR UPDATE", order)
        first = stackless.tasklet(self.place)(buyer, "buy", TRITANIUM, 5, 10, "raced")
        results = []
        stackless.tasklet(lambda: results.append(self.place(buyer, "buy", TRITANIUM, 5, 10, "raced")))()
        wait_for_waiters(ORDER_WRITE, 1)       # the first holds its request row...
        wait_for_waiters(REQUEST_INSERT, 1)  # ...and the retry waits on it
        gate.rollback()
        wait_until(lambda: after_others_ran(lambda: results and not first.alive), timeout=20, what="both answers")
        self.assertEqual(results[0]["trades"], [{"price": 10, "quantity": 5}])
        self.assertEqual(self.balance(buyer), 950)
        self.assertEqual(market_ledger.book(REGION, TRITANIUM)["sell"], [[10, 5]])
        self.assertEqual(db.query("SELECT COUNT(*) FROM market_trades")[0][0], 1)


class ConcurrencyTest(MarketTestCase):

    def test_concurrent_placers_never_oversell(self):
        self.as_separate_nodes()
        seller = self.character()
        self.place(seller, "sell", TRITANIUM, 10, 5)
        buyers = [self.character(100) for _ in range(6)]
        answers = run_tasklets(*[lambda b=b: self.place(b, "buy", TRITANIUM, 3, 5) for b in buyers])
        for answer in answers:
            self.assertIsInstance(answer, dict, answer)
        self.assertEqual(sum(a["filled"] for a in answers), 10)
        self.assertEqual(self.balance(seller), 50)
        self.assertEqual(market_ledger.book(REGION, TRITANIUM), {"buy": [[5, 8]], "sell": []})

    def test_placers_in_different_books_do_not_deadlock(self):
        # Each trades with itself in a book of its own: they share no row. (A
        # locking range read of the book reached into the next book's orders
        # and gaps, and these deadlocked within a few rounds.)
        traders = [self.character(10_000) for _ in range(6)]
        items = [TRITANIUM + n for n in range(len(traders))]
        for trader, item in zip(traders, items):  # the books' rows exist before the race
            self.place(trader, "sell", item, 1, 10)

        def rounds(trader, item):
            for _ in range(10):
                self.place(trader, "buy", item, 1, 10)
                self.place(trader, "sell", item, 1, 10)
            return "done"

        results = run_tasklets(*[lambda t=t, i=i: rounds(t, i) for t, i in zip(traders, items)])
        self.assertEqual(results, ["done"] * len(traders))
        self.assertEqual(market_ledger.stats["retries"], self.retries_before, "placers waited on each other")

    def test_a_deadlock_between_two_placers_is_retried(self):
        # Each buys what the other sells: each holds its own wallet and needs
        # the other's to pay it. The gate makes both hold theirs first.
        one, two = self.character(1_000), self.character(1_000)
        ore = self.place(two, "sell", TRITANIUM, 5, 10)["order_id"]
        gas = self.place(one, "sell", PYERITE, 5, 20)["order_id"]
        gate = self.gate("SELECT id FROM market_orders WHERE id IN (?, ?) FOR UPDATE", ore, gas)
        results = []
        stackless.tasklet(lambda: results.append(self.place(one, "buy", TRITANIUM, 5, 10)))()
        stackless.tasklet(lambda: results.append(self.place(two, "buy", PYERITE, 5, 20)))()
        wait_for_waiters(ORDER_WRITE, 2)
        with self.assertLogs("shard.market", "INFO") as logged:
            gate.rollback()
            wait_until(lambda: after_others_ran(lambda: len(results) == 2), timeout=30, what="both placers")
        self.assertEqual(sorted(r["filled"] for r in results), [5, 5])
        self.assertEqual((self.balance(one), self.balance(two)), (1_000 - 50 + 100, 1_000 - 100 + 50))
        self.assertGreaterEqual(market_ledger.stats["retries"], self.retries_before + 1)
        self.assertIn("deadlock", "\n".join(logged.output))

    def test_a_lock_wait_timeout_is_retried(self):
        seller, buyer = self.character(), self.character(1_000)
        self.place(seller, "sell", TRITANIUM, 5, 10)
        gate = self.gate("SELECT balance FROM wallets WHERE character_id = ? FOR UPDATE", seller)
        results = []
        with self.assertLogs("shard.market", "INFO") as logged:
            stackless.tasklet(lambda: results.append(self.place(buyer, "buy", TRITANIUM, 5, 10)))()
            # Held past the market's lock wait: the placer's statement times out, and it tries again.
            wait_until(lambda: after_others_ran(lambda: market_ledger.stats["retries"] > self.retries_before),
                       timeout=LOCK_WAIT_S * 4, what="a retry")
            gate.rollback()
            wait_until(lambda: after_others_ran(lambda: results), timeout=20, what="the placer")
        self.assertEqual(results[0]["filled"], 5)
        self.assertIn("lock wait timeout", "\n".join(logged.output))


class TurnsTest(MarketTestCase):

    def test_one_books_placers_wait_as_tasklets_and_leave_the_pool_to_other_work(self):
        # The book's row held by "another node": this process sends one
        # placer to wait on it in the database, the others wait their turn
        # holding no connection, so the rest of the pool serves other work.
        # (Each placer held a connection in that lock wait: eight took the
        # whole pool, and a sol's heartbeat waited behind them.)
        seller = self.character()
        self.place(seller, "sell", TRITANIUM, 100, 5)  # the book's row exists
        buyers = [self.character(100) for _ in range(8)]
        gate = self.gate("SELECT type_id FROM market_books WHERE region_id = ? AND type_id = ? FOR UPDATE",
                         REGION, TRITANIUM)
        results = []
        for buyer in buyers:
            stackless.tasklet(lambda b=buyer: results.append(self.place(b, "buy", TRITANIUM, 1, 5)))()
        wait_until(lambda: after_others_ran(lambda: market_turns.waiting().get((REGION, TRITANIUM)) == 8),
                   timeout=20, what="eight placers at the book")
        wait_for_waiters("INSERT INTO market_books", 1)
        for _ in range(20):  # the others had every chance to reach the server
            after_others_ran(lambda: None)
        self.assertEqual(waiting("INSERT INTO market_books"), 1)
        self.assertLessEqual(db.stats()["in_use"], 2, "the gate's connection and one placer's")
        self.assertEqual(db.query("SELECT 1"), [(1,)])  # no wait behind the placers
        gate.rollback()
        wait_until(lambda: after_others_ran(lambda: len(results) == 8), timeout=30, what="the eight placers")
        self.assertEqual(sorted(r["filled"] for r in results), [1] * 8)
        self.assertEqual(market_turns.waiting(), {})

    def test_a_send_again_while_the_first_waits_for_its_turn_waits_for_it_and_gets_its_answer(self):
        # A client that heard nothing sends the same request again: the second
        # send does not queue at the book beside the first (the queue of a busy
        # book would fill with sends of the same requests).
        seller, buyer = self.character(), self.character(100)
        self.place(seller, "sell", TRITANIUM, 5, 10)
        release, turns, answers = uthread.Event(), [], []

        def holder():
            with market_turns.turn(REGION, TRITANIUM):
                turns.append("held")
                release.wait()

        stackless.tasklet(holder)()
        wait_until(lambda: after_others_ran(lambda: turns), what="the holder's turn")
        for _ in range(2):
            stackless.tasklet(lambda: answers.append(self.place(buyer, "buy", TRITANIUM, 2, 10, "sent-twice")))()
        for _ in range(20):
            after_others_ran(lambda: None)
        self.assertEqual(market_turns.waiting(), {(REGION, TRITANIUM): 2}, "the holder and the first send only")
        release.set()
        wait_until(lambda: after_others_ran(lambda: len(answers) == 2), timeout=20, what="both sends' answers")
        self.assertEqual(answers[0], answers[1])
        self.assertEqual(answers[0]["filled"], 2)
        self.assertEqual(db.query("SELECT COUNT(*) FROM market_requests WHERE request_id = 'sent-twice'"), [(1,)])

    def test_a_request_that_waits_too_long_for_its_turn_is_refused_before_it_began(self):
        turns = []

        def holder():
            with market_turns.turn(REGION, TRITANIUM):
                turns.append("held")
                uthread.Sleep(0.5)

        stackless.tasklet(holder)()
        wait_until(lambda: after_others_ran(lambda: turns), what="the holder's turn")
        with self.assertRaisesRegex(market_turns.MarketBusy,
                                    r"^the market of type 34 in region 10000001 is busy: 1 requests wait; "):
            with market_turns.turn(REGION, TRITANIUM, wait_s=0.05):
                self.fail("a turn while another holds it")
        wait_until(lambda: after_others_ran(lambda: market_turns.waiting() == {}), what="the holder's end")


class HostileArgumentsTest(MarketTestCase):

    def test_bad_orders_are_refused_before_anything_is_written(self):
        trader = self.character(1_000)
        before = self.snapshot()
        good = ["buy", TRITANIUM, 1, 10, "ok"]
        cases = [
            (0, "BUY", ValueError), (0, "x" * 100_000, ValueError), (0, None, TypeError), (0, 1, TypeError),
            (1, 0, ValueError), (1, -1, ValueError), (1, 2**31, ValueError), (1, True, TypeError),
            (1, 1.5, TypeError), (1, "34", TypeError),
            (2, 0, ValueError), (2, 10**9 + 1, ValueError), (2, True, TypeError), (2, 2**70, ValueError),
            (3, 0, ValueError), (3, -5, ValueError), (3, 10**13 + 1, ValueError), (3, None, TypeError),
            (4, "", ValueError), (4, "x" * 65, ValueError), (4, "é" * 33, ValueError), (4, b"id", TypeError),
            (4, 7, TypeError), (4, "\ud800", ValueError),
        ]
        for position, value, error in cases:
            args = list(good)
            args[position] = value
            with self.subTest(position=position, value=repr(value)[:20]):
                with self.assertRaises(error):
                    market_ledger.place(trader, REGION, SYSTEM, *args)
        with self.assertRaisesRegex(ValueError, "price x quantity"):
            market_ledger.place(trader, REGION, SYSTEM, "buy", TRITANIUM, 10**9, 10**13, "huge")
        for order_id, error in ((0, ValueError), (-1, ValueError), ("1", TypeError), (2**64, ValueError)):
            with self.assertRaises(error):
                market_ledger.cancel(trader, order_id, "c")
        for limit in (0, 501, "5"):
            with self.assertRaises((TypeError, ValueError)):
                market_ledger.history(trader, limit)
        self.assertEqual(self.snapshot(), before)

    def test_a_hostile_request_id_is_data(self):
        trader = self.character(1_000)
        hostile = "'; DROP TABLE wallets; --"
        first = self.place(trader, "buy", TRITANIUM, 1, 10, request_id=hostile)
        self.assertEqual(self.place(trader, "buy", TRITANIUM, 1, 10, request_id=hostile), first)
        self.assertEqual(json.loads(db.query("SELECT answer FROM market_requests WHERE request_id = ?",
                                             hostile)[0][0]), first)


if __name__ == "__main__":
    unittest.main()
