"""The market end to end with real processes: two `shard sol`s and a
`shard proxy` on the private MariaDB (ctest's `mariadb` fixture), game
clients speaking the wire by hand (cluster_support.Client): two clients
trade through `market.place`, one that cannot pay changes nothing; and a sol
killed (SIGKILL) while several clients trade leaves no transaction lost or
duplicated — the clients reconnect, select their characters again (their
system has moved to the other sol) and retry with the same request_ids.

Every wait is bounded."""

import os
import signal
import sys
import traceback
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "engine", "tests", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "db", "tests", "python"))

import accounts  # noqa: E402
import db  # noqa: E402
import json  # noqa: E402
import market_support  # noqa: E402
import rpc_pb2  # noqa: E402
import rpc_values  # noqa: E402
import stackless  # noqa: E402
from cluster_support import Client, Cluster, SolsAndProxy  # noqa: E402
from support import StacklessTestCase, run_in_tasklet  # noqa: E402

REGION, OTHER_REGION = 10000001, 10000002
SYSTEM, OTHER_SYSTEM = 30000001, 30000002  # one region, split over the two sols
TRITANIUM = 34
SELLERS, BUYERS = ("seller1", "seller2"), ("buyer1", "buyer2")
START = 1_000_000  # each wallet, hundredths of an ISK

# Every client comes from 127.0.0.1 and reconnects after the kill: the
# address throttle must not refuse them. The sols run the traders' requests,
# each pinning a connection for its transaction, beside their heartbeats and
# settings reads: more connections than cluster_support's 2.
# A market request is a transaction of a dozen statements, and under the
# default dispatch strategy (main_loop) each statement's completion waits for
# the next frame: at the default 30 fps a request takes ~0.4 s and the book
# serializes them, so test_2's hundred requests took ~45 s of frame waits.
# At 200 fps the same strategy wakes them within 5 ms.
cluster = Cluster("shard_test_market_cluster", {"proxy": {"tls": "off", "logins_per_address": 1000},
                                                "db": {"pool_size": 6}, "loop": {"fps": 200}})
_characters = {}  # name -> character id
_funded = {}      # character id -> START (for the audit)


def setUpModule():
    cluster.set_up()
    db.execute("INSERT INTO regions (id, name) VALUES (?, 'The Forge'), (?, 'Domain')", REGION, OTHER_REGION)
    for system in (SYSTEM, OTHER_SYSTEM):
        db.execute("INSERT INTO solar_systems (id, name, security, x, y, z, region_id) VALUES (?, ?, 0.9, 0, 0, 0, ?)",
                   system, "S-%d" % system, REGION)
    for name in ("alice", "bob", "poor") + SELLERS + BUYERS:
        how, account = run_in_tasklet(accounts.create, name, name + "-pw")
        assert how == "ok", account
        character = db.execute("INSERT INTO characters (account_id, name) VALUES (?, ?)", account, name).lastrowid
        db.execute("INSERT INTO ships (owner_id, type_id, system_id, x, y, z) VALUES (?, 1, ?, 0, 0, 0)",
                   character, OTHER_SYSTEM if name == "bob" else SYSTEM)
        money = 50 if name == "poor" else START
        db.execute("INSERT INTO wallets (character_id, balance) VALUES (?, ?)", character, money)
        _characters[name] = character
        _funded[character] = money


def tearDownModule():
    cluster.tear_down()


class Trader:
    """A client that logs in, selects its character and places orders,
    reconnecting and retrying the same request_id when its sol is gone."""

    def __init__(self, test, name):
        self.test, self.name = test, name
        self.client = None
        self.answers = {}  # request_id -> the answer received
        self.retried = 0
        self.error = None

    def connect(self):
        """Connected, logged in and in its system again: a new connection
        after one the proxy closed, select_character again while the system's
        sol is dead and not yet replaced (Unavailable)."""
        if self.client is not None:
            self.client.close()
            self.client = None

        def ready():
            try:
                if self.client is None:
                    self.client = Client(self.test.port)
                    self.client.login(self.name)
                _, error = self.client.call("characters", "select", _characters[self.name])
                return error is None
            except (EOFError, OSError):
                if self.client is not None:
                    self.client.close()
                self.client = None
                return False
        cluster.poll(ready, "%s back in its system" % self.name)

    def call(self, method, *args):
        """The result; an RpcError other than UNAVAILABLE fails the test."""
        while True:
            try:
                result, error = self.client.call("market", method, *args)
            except (EOFError, OSError):  # the proxy ended the connection
                result, error = None, rpc_pb2.RpcError(kind=rpc_pb2.RpcError.UNAVAILABLE)
            if error is None:
                return result
            if error.kind != rpc_pb2.RpcError.UNAVAILABLE:
                raise AssertionError("%s: market.%s%r: %s" % (self.name, method, args, error))
            self.retried += 1
            self.connect()

    def trade(self, side, count):
        try:
            for n in range(count):
                request_id = "%s-%d" % (self.name, n)
                price = 100 + n % 7 if side == "sell" else 103 + n % 5
                self.answers[request_id] = self.call("place", side, TRITANIUM, 1 + n % 4, price, request_id)
        except BaseException as e:  # the test reports it
            self.error = e


class MarketClusterTest(StacklessTestCase):
    deadline_s = 240

    @classmethod
    def setUpClass(cls):
        cls.nodes = SolsAndProxy(cluster, "proxy-m")
        cls.sols, cls.ids, cls.hosts = cls.nodes.sols, cls.nodes.ids, cls.nodes.hosts
        cls.proxy, cls.port = cls.nodes.proxy, cls.nodes.port

    @classmethod
    def tearDownClass(cls):
        cls.nodes.stop()

    def client(self, name):
        client = Client(self.port)
        self.addCleanup(client.close)
        client.login(name)
        _, error = client.call("characters", "select", _characters[name])
        self.assertIsNone(error)
        return client

    def call(self, client, method, *args):
        result, error = client.call("market", method, *args)
        self.assertIsNone(error)
        return result

    def test_1_two_clients_trade_and_one_that_cannot_pay_changes_nothing(self):
        alice, bob, poor = self.client("alice"), self.client("bob"), self.client("poor")  # bob on the other sol
        order = self.call(alice, "place", "sell", TRITANIUM, 10, 100, "a-1")
        self.assertEqual((order["filled"], order["remaining"]), (0, 10))
        bought = self.call(bob, "place", "buy", TRITANIUM, 4, 120, "b-1")
        self.assertEqual(bought, {"order_id": None, "filled": 4, "remaining": 0,
                                  "trades": [{"price": 100, "quantity": 4}]})
        # The seller, online on the other sol, hears of it: its order, the type, quantity and price.
        note = alice.next_notification()
        self.assertEqual((note.service, note.event), ("market", "trade"))
        self.assertEqual([rpc_values.from_wire(v) for v in note.args], [order["order_id"], TRITANIUM, 4, 100])
        self.assertEqual(self.call(bob, "place", "buy", TRITANIUM, 4, 120, "b-1"), bought)  # a retry: the same
        self.assertEqual((self.call(alice, "balance"), self.call(bob, "balance")), (START + 400, START - 400))
        self.assertEqual(self.call(bob, "book", TRITANIUM), {"buy": [], "sell": [[100, 6]]})
        self.assertEqual([(o["order_id"], o["quantity"]) for o in self.call(alice, "my_orders")],
                         [(order["order_id"], 6)])
        self.assertEqual([(h["amount"], h["reason"]) for h in self.call(bob, "history", 10)], [(-400, "market buy")])

        # The rollback case: an order the wallet cannot pay.
        book = self.call(poor, "book", TRITANIUM)
        _, error = poor.call("market", "place", "buy", TRITANIUM, 6, 100, "p-1")
        self.assertEqual((error.kind, error.type), (rpc_pb2.RpcError.APPLICATION, "InsufficientFunds"))
        self.assertIn("the wallet holds 50", error.message)
        self.assertEqual((self.call(poor, "balance"), self.call(poor, "book", TRITANIUM)), (50, book))
        self.assertEqual(self.call(poor, "history"), [])

        # Hostile arguments: refused with the reason, the sol fine.
        for args, kind, type_name in ((("sell", TRITANIUM, True, 5, "h-1"), rpc_pb2.RpcError.APPLICATION, "TypeError"),
                                      (("x" * 10000, TRITANIUM, 1, 5, "h-2"), rpc_pb2.RpcError.APPLICATION,
                                       "ValueError"),
                                      (("sell", TRITANIUM, 1, 5, "h" * 1000), rpc_pb2.RpcError.APPLICATION,
                                       "ValueError"),
                                      (("sell", TRITANIUM), rpc_pb2.RpcError.BAD_ARGUMENTS, "")):
            _, error = poor.call("market", "place", *args)
            self.assertEqual((error.kind, error.type), (kind, type_name), error.message)
        self.assertEqual(self.call(poor, "balance"), 50)
        self.assertEqual(market_support.audit(self, _funded), 2)

        # The market is the region's: a system moved to another region (plain
        # SQL, followed by the sol within its settings interval) sees that one's.
        db.execute("UPDATE solar_systems SET region_id = ? WHERE id = ?", OTHER_REGION, SYSTEM)
        cluster.poll(lambda: self.call(alice, "book", TRITANIUM)["sell"] == [], "alice's system in the other region")
        db.execute("UPDATE solar_systems SET region_id = ? WHERE id = ?", REGION, SYSTEM)
        cluster.poll(lambda: self.call(alice, "book", TRITANIUM)["sell"] == [[100, 6]], "alice's system back")

    def test_2_a_sol_killed_mid_trade_loses_and_duplicates_no_transaction(self):
        system_sol = self.sols[self.ids.index(self.hosts[SYSTEM])]
        other_id = self.hosts[OTHER_SYSTEM]
        traders = [Trader(self, name) for name in SELLERS + BUYERS]
        for trader in traders:
            trader.connect()
            self.addCleanup(lambda t=trader: t.client and t.client.close())
        count = 25
        workers = [stackless.tasklet(t.trade)("sell" if t.name in SELLERS else "buy", count) for t in traders]
        cluster.poll(lambda: sum(len(t.answers) for t in traders) >= 12, "trades flowing")
        system_sol.signal(signal.SIGKILL)
        cluster.poll(lambda: not any(w.alive for w in workers), "every trader done", timeout=120)
        for trader in traders:
            if trader.error is not None:
                self.fail("%s: %s\n%s" % (trader.name, "".join(traceback.format_exception(trader.error)),
                                         cluster.post_mortem()))
            self.assertEqual(len(trader.answers), count, trader.name)
        self.assertGreater(sum(t.retried for t in traders), 0, "no call met the killed sol")
        # The system moved to the other sol, which answered the retries.
        result, _ = traders[0].client.call("ping", "ping")
        self.assertEqual(result["node_id"], other_id)

        # Every request the clients made: exactly once in the database, with the answer they got.
        stored = {row[0].decode(): json.loads(row[1]) for row in db.query(
            "SELECT request_id, answer FROM market_requests WHERE character_id IN (?, ?, ?, ?)",
            *[_characters[t.name] for t in traders])}
        answers = {rid: answer for t in traders for rid, answer in t.answers.items()}
        self.assertEqual(stored, answers)
        self.assertGreater(db.query("SELECT COUNT(*) FROM market_trades")[0][0], 20)
        # The audit with the clients' log: none of their requests lost, differing or made by no one.
        log = [{"character_id": _characters[t.name], "request_id": rid, "outcome": "answered",
                "order_id": answer["order_id"], "filled": answer["filled"], "trades": len(answer["trades"])}
               for t in traders for rid, answer in t.answers.items()]
        market_support.audit(self, _funded, log)


if __name__ == "__main__":
    unittest.main()
