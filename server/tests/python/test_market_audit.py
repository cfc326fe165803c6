"""The market audit (scripts/market_audit.py, tools/bench/market_audit.py)
against the private MariaDB (ctest's `mariadb` fixture): a run of real
trades through market_ledger, with its trade log, passes; each tampering
of the books or of the log is caught with the problem that names it — a
wallet row lost, a trade duplicated, money added to a wallet, an escrow
changed, an answered request missing, an answer differing, a refused
request stored, a request no bot made, a row of a request that does not
exist, a new character's money from nowhere. Each test asserts the exact
problems its tampering makes, so a check removed fails it."""

import json
import os
import subprocess
import sys
import tempfile
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..")
sys.path.insert(0, os.path.join(ROOT, "engine", "tests", "python"))
sys.path.insert(0, os.path.join(ROOT, "db", "tests", "python"))

import characters  # noqa: E402
import db  # noqa: E402
import market_audit  # noqa: E402
import market_ledger  # noqa: E402
import market_support  # noqa: E402
from cluster_support import Cluster  # noqa: E402
from dbsupport import client_env  # noqa: E402
from market_wallets import InsufficientFunds  # noqa: E402
from support import SHARD_BINARY, StacklessTestCase  # noqa: E402

REGION, SYSTEM, TRITANIUM = 10000001, 30000001, 34

cluster = Cluster("shard_test_market_audit")


def setUpModule():
    cluster.set_up()
    db.execute("INSERT INTO regions (id, name) VALUES (?, 'The Forge')", REGION)
    db.execute("INSERT INTO solar_systems (id, name, security, x, y, z, region_id) VALUES (?, 'Jita', 0.9, 0, 0, 0, ?)",
               SYSTEM, REGION)


def tearDownModule():
    cluster.tear_down()


class Run:
    """Characters, a baseline, then real trades through market_ledger, each
    logged as a bot logs it (market_audit's trade log)."""

    def __init__(self, test):
        self.test = test
        self.log = []
        self.rows = {}      # request_id -> its market_requests row
        self.answers = {}   # request_id -> the answer
        self.account = db.execute("INSERT INTO accounts (name, password_hash) VALUES (?, 'not a hash')",
                                  "audit-%s" % test.id().rsplit(".", 1)[-1][:40]).lastrowid

    def character(self, name, balance):
        character = db.execute("INSERT INTO characters (account_id, name) VALUES (?, ?)", self.account,
                               "%s-%d" % (name, self.account)).lastrowid
        db.execute("INSERT INTO wallets (character_id, balance) VALUES (?, ?)", character, balance)
        return character

    def place(self, who, side, quantity, price, request_id, outcome="answered"):
        """Places for real; logs the outcome the bot saw ("answered" logs the
        answer, "unknown" as if no answer came back, None: not logged)."""
        try:
            answer = market_ledger.place(who, REGION, SYSTEM, side, TRITANIUM, quantity, price, request_id).answer
        except InsufficientFunds:
            self.log.append({"character_id": who, "request_id": request_id, "outcome": "refused"})
            return None
        self.answers[request_id] = answer
        (self.rows[request_id],), = db.query("SELECT id FROM market_requests WHERE character_id = ? AND"
                                             " request_id = ?", who, request_id)
        if outcome == "answered":
            self.log.append({"character_id": who, "request_id": request_id, "outcome": "answered",
                             "order_id": answer["order_id"], "filled": answer["filled"],
                             "trades": len(answer["trades"])})
        elif outcome == "unknown":
            self.log.append({"character_id": who, "request_id": request_id, "outcome": "unknown"})
        return answer

    def trade(self):
        """The run: the books before it (trades before the baseline), the
        baseline, then every kind of request and outcome."""
        self.a, self.b, self.c = self.character("a", 0), self.character("b", 10_000), self.character("c", 1_000)
        self.d = self.character("d", 500)  # trades, logs nothing: its requests are no bot's
        self.place(self.a, "sell", 2, 10, "before-1", outcome=None)
        self.place(self.b, "buy", 2, 10, "before-2", outcome=None)
        self.baseline = json.loads(json.dumps(market_audit.snapshot()))  # as the CLI's file holds it

        self.place(self.a, "sell", 5, 10, "s-1")            # rests
        self.place(self.b, "buy", 3, 10, "b-1")             # takes 3 of it
        self.buy_order = self.place(self.c, "buy", 4, 9, "b-2")["order_id"]  # rests, escrow 36
        self.place(self.a, "sell", 2, 9, "s-2")             # takes 2 of c's buy
        self.place(self.c, "buy", 1000, 10, "b-3")          # refused: cannot pay
        # A retry: no answer the first time, the second answered from the row.
        self.place(self.b, "buy", 1, 10, "b-4", outcome="unknown")
        self.place(self.b, "buy", 1, 10, "b-4")
        self.place(self.b, "buy", 1, 10, "b-5", outcome="unknown")  # committed, its answer never came
        self.log.append({"character_id": self.b, "request_id": "b-6", "outcome": "unknown"})  # never reached it
        order = self.place(self.d, "buy", 5, 8, "d-1", outcome=None)["order_id"]
        market_ledger.cancel(self.d, order, "d-2")
        # A character made after the baseline, as the game makes them: STARTING_BALANCE in its wallet.
        account = db.execute("INSERT INTO accounts (name, password_hash) VALUES (?, 'not a hash')",
                             "new-%d" % self.account).lastrowid  # the others' account has 3 characters already
        session = types.SimpleNamespace(account_id=account)
        self.e = characters.Characters(session, None).create("e-%d" % self.account)["character_id"]
        self.place(self.e, "sell", 1, 9, "e-1")             # takes 1 more of c's buy
        return self

    def check(self):
        return market_audit.check(self.baseline, self.log)


class AuditTest(StacklessTestCase):
    deadline_s = 120

    def setUp(self):
        super().setUp()
        for table in ("market_trades", "wallet_transactions", "market_orders", "market_requests", "wallets"):
            db.execute("DELETE FROM " + table)
        self.market = Run(self).trade()

    def assertProblems(self, result, *expected):
        """The result's problems are exactly `expected`, each given as the fragments it contains."""
        self.assertEqual(len(result.problems), len(expected), "\n".join(result.problems))
        for fragments, problem in zip(expected, result.problems):
            for fragment in fragments:
                self.assertIn(fragment, problem, "\n".join(result.problems))

    def name(self, request_id, who):
        return "request %d (character %d, %r)" % (self.market.rows[request_id], who, request_id)

    def expected_money(self):
        """The baseline's money and the new character's starting balance."""
        return self.market.baseline["money"] + characters.STARTING_BALANCE

    def test_a_clean_run_of_real_trades_passes_and_is_counted(self):
        result = self.market.check()
        self.assertEqual(result.problems, [])
        self.assertTrue(result.ok)
        counts = dict(result.counts)
        self.assertEqual({k: counts[k] for k in ("requests", "trades", "wallet_rows", "answered", "refused",
                                                 "unknown", "unknown_with_row", "new_characters", "open_orders",
                                                 "log_lines", "wallet_rows_outside_market")},
                         {"requests": 9, "trades": 5, "wallet_rows": 15, "answered": 6, "refused": 1,
                          "unknown": 2, "unknown_with_row": 1, "new_characters": 1, "open_orders": 1,
                          "log_lines": 10, "wallet_rows_outside_market": 0})
        # Only what follows a baseline is checked: one taken now has no request after it.
        self.assertEqual(market_audit.check(market_audit.snapshot(), []).counts["requests"], 0)

    def test_a_wallet_row_deleted_is_a_lost_transaction(self):
        (row, amount), = db.query("SELECT id, amount FROM wallet_transactions WHERE market_request_id = ?"
                                  " AND character_id = ?", self.market.rows["b-1"], self.market.b)
        db.execute("DELETE FROM wallet_transactions WHERE id = ?", row)
        self.assertProblems(self.market.check(),
                            ("character %d:" % self.market.b, "from outside the market, expected 10000"),
                            (self.name("b-1", self.market.b), ": 1 wallet rows, expected 2"))
        self.assertEqual(amount, -30)

    def test_a_trade_duplicated_is_caught(self):
        columns = ("market_request_id, region_id, type_id, price, quantity, resting_order_id, taker_is_buy,"
                   " buyer_id, seller_id")
        db.execute("INSERT INTO market_trades (%s) SELECT %s FROM market_trades WHERE market_request_id = ?"
                   % (columns, columns), self.market.rows["s-2"])
        self.assertProblems(self.market.check(),
                            (self.name("s-2", self.market.a), "its answer lists 1 trades, market_trades holds 2"))

    def test_a_trade_altered_is_caught(self):
        db.execute("UPDATE market_trades SET quantity = quantity + 1 WHERE market_request_id = ?",
                   self.market.rows["s-2"])
        self.assertProblems(self.market.check(), (self.name("s-2", self.market.a), "its answer lists trades",
                                                "'quantity': 2", "'quantity': 3"))

    def test_money_added_to_a_wallet_is_caught(self):
        db.execute("UPDATE wallets SET balance = balance + 1000 WHERE character_id = ?", self.market.c)
        self.assertProblems(self.market.check(),
                            ("character %d:" % self.market.c, ": 2000 from outside the market, expected 1000"),
                            ("money made or lost:", "expected %d" % self.expected_money()))

    def test_an_escrow_changed_is_caught(self):
        db.execute("UPDATE market_orders SET escrow = escrow + 5 WHERE id = ?", self.market.buy_order)
        self.assertProblems(self.market.check(),
                            ("money made or lost:", "expected %d" % self.expected_money()),
                            ("order %d (buy 1 at 9): escrow 14, expected 9" % self.market.buy_order,))

    def test_a_logged_answer_whose_request_is_missing_is_lost(self):
        # s-1 rested a sell: no wallet row or trade of its own, only its request row goes.
        db.execute("DELETE FROM market_requests WHERE id = ?", self.market.rows["s-1"])
        order = self.market.answers["s-1"]["order_id"]
        self.assertProblems(self.market.check(), ("request 's-1' of character %d: lost" % self.market.a,
                                                  "(order_id %d, filled 0, 0 trades)" % order))

    def test_a_logged_answer_that_differs_is_caught(self):
        entry = next(e for e in self.market.log if e["request_id"] == "b-1")
        entry["filled"] = 2
        self.assertProblems(self.market.check(), (self.name("b-1", self.market.b), "differs: the bot got order_id None,"
                                                " filled 2, 1 trades; stored order_id None, filled 3, 1 trades"))

    def test_a_refused_request_with_a_row_is_caught(self):
        entry = next(e for e in self.market.log if e["request_id"] == "s-2")
        entry.clear()
        entry.update(character_id=self.market.a, request_id="s-2", outcome="refused")
        self.assertProblems(self.market.check(), (self.name("s-2", self.market.a), "the bot was refused"))

    def test_a_request_no_bot_made_is_caught(self):
        self.market.place(self.market.a, "sell", 1, 50, "ghost", outcome=None)  # a's other requests are logged
        self.assertProblems(self.market.check(), (self.name("ghost", self.market.a), "a request no bot made"))

    def test_a_request_of_an_unlogged_character_is_not_the_bots(self):
        self.market.place(self.market.d, "sell", 1, 50, "d-3", outcome=None)
        self.assertEqual(self.market.check().problems, [])

    def test_a_retry_answered_after_an_answer_must_agree(self):
        self.market.log.append({"character_id": self.market.b, "request_id": "b-4", "outcome": "answered",
                              "order_id": 99, "filled": 1, "trades": 1})
        self.assertProblems(self.market.check(), ("request 'b-4' of character %d: answered twice, differently"
                                                % self.market.b,),
                            (self.name("b-4", self.market.b), "differs: the bot got order_id 99"))

    def test_rows_of_a_request_that_does_not_exist_are_caught(self):
        # Only with the server's foreign key checks off (0008 has them): the audit does not rely on them.
        with db.transaction() as tx:
            tx.execute("SET foreign_key_checks = 0")
            try:
                tx.execute("INSERT INTO wallet_transactions (character_id, amount, balance_after, reason,"
                           " market_request_id) VALUES (?, 0, 0, 'forged', 999999)", self.market.d)
                tx.execute("INSERT INTO market_trades (market_request_id, region_id, type_id, price, quantity,"
                           " resting_order_id, taker_is_buy, buyer_id, seller_id) VALUES (999998, ?, ?, 1, 1, 1, 1,"
                           " ?, ?)", REGION, TRITANIUM, self.market.d, self.market.d)
            finally:
                tx.execute("SET foreign_key_checks = 1")  # the pool's connection goes back as it came
        (trade,), = db.query("SELECT MAX(id) FROM market_trades")
        (row,), = db.query("SELECT MAX(id) FROM wallet_transactions")
        self.assertProblems(self.market.check(), ("trade %d: its market request 999998 does not exist" % trade,),
                            ("wallet row %d: its market request 999999 does not exist" % row,))

    def test_rows_added_to_a_request_from_before_the_baseline_are_caught(self):
        old = self.market.baseline["last"]["market_requests"]
        db.execute("INSERT INTO wallet_transactions (character_id, amount, balance_after, reason, market_request_id)"
                   " VALUES (?, 0, 0, 'late', ?)", self.market.d, old)
        (row,), = db.query("SELECT MAX(id) FROM wallet_transactions")
        self.assertProblems(self.market.check(), ("wallet row %d: its market request %d is from before the baseline"
                                                % (row, old),))

    def test_a_new_character_with_money_from_nowhere_is_caught(self):
        db.execute("UPDATE wallets SET balance = balance + 7 WHERE character_id = ?", self.market.e)
        self.assertProblems(self.market.check(), ("character %d:" % self.market.e,
                                                "%d from outside the market, expected %d"
                                                % (characters.STARTING_BALANCE + 7, characters.STARTING_BALANCE)))

    def test_the_tests_audit_fails_them_with_every_problem(self):
        m = self.market
        funded = {m.a: 0, m.b: 10_000, m.c: 1_000, m.d: 500, m.e: characters.STARTING_BALANCE}
        self.assertEqual(market_support.audit(self, funded), 11)  # the tests' baseline: an empty market
        db.execute("UPDATE wallets SET balance = balance + 1 WHERE character_id = ?", m.a)
        with self.assertRaisesRegex(AssertionError, r"do not balance \(2 problems\):\ncharacter %d: .*\nmoney made"
                                    % m.a):
            market_support.audit(self, funded)

    def test_a_malformed_trade_log_is_refused_with_its_line(self):
        self.market.log.insert(2, {"character_id": self.market.a, "request_id": "x", "outcome": "answered",
                                   "filled": 1})
        with self.assertRaisesRegex(ValueError, "trade log line 3: no 'order_id'"):
            self.market.check()

    def test_the_cli_takes_a_baseline_and_checks_a_log(self):
        with tempfile.TemporaryDirectory() as tmp:
            baseline, log, out = (os.path.join(tmp, name) for name in ("baseline.json", "log.jsonl", "out.json"))
            env = dict(os.environ, **dict(client_env(), SHARD_DB_DATABASE=cluster.database))
            cli = [SHARD_BINARY, "python", os.path.join(ROOT, "tools", "bench", "market_audit.py")]
            done = subprocess.run(cli + ["snapshot", baseline], env=env, capture_output=True, text=True, timeout=60)
            self.assertEqual(done.returncode, 0, done.stderr)
            first = self.market.place(self.market.a, "sell", 1, 20, "cli-1")
            with open(log, "w", encoding="utf-8") as f:
                f.write("".join(json.dumps(entry) + "\n" for entry in self.market.log[-1:]))
            done = subprocess.run(cli + ["check", baseline, "--trade-log", log, "--json", out], env=env,
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
            summary = json.loads(done.stdout)
            self.assertEqual((summary["requests"], summary["answered"], summary["problems"]), (1, 1, 0))
            self.assertIsNotNone(first)

            db.execute("UPDATE wallets SET balance = balance + 1 WHERE character_id = ?", self.market.a)
            done = subprocess.run(cli + ["check", baseline, "--trade-log", log, "--json", out], env=env,
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual(done.returncode, 1, done.stdout + done.stderr)
            summary = json.loads(done.stdout)
            self.assertEqual(summary["problems"], 2)
            self.assertIn("money made or lost", summary["first_problems"][1])
            with open(out, encoding="utf-8") as f:
                self.assertEqual(len(json.load(f)["problems"]), 2)

            with open(log, "a", encoding="utf-8") as f:
                f.write("{not json\n")
            done = subprocess.run(cli + ["check", baseline, "--trade-log", log], env=env, capture_output=True,
                                  text=True, timeout=60)
            self.assertEqual(done.returncode, 2, done.stdout + done.stderr)
            self.assertIn("log.jsonl line 2: not JSON", done.stderr)


if __name__ == "__main__":
    unittest.main()
