"""Matching one incoming order against a region's book, inside the caller's
transaction (market_ledger.py): the other side's best orders in price-time
priority (best price first, then the oldest: the lowest id), filled at the
resting order's price, the money moved for both sides; what is left
rests as an order (docs/market.md).

Money: a buy order that rests escrows price x quantity left, taken from the
wallet when it rests (`market_orders.escrow`); its fills later are paid from
that escrow (an `escrow release` and a `buy` row, so the wallet's rows add
up to its balance). An incoming buy pays each fill from the wallet at once.
The buyer's funds are checked before each payment, against the balance
locked at the start: never a negative balance, and nothing of a request
that cannot pay stays (the transaction rolls back).
"""

import collections

from market_wallets import InsufficientFunds, move

BATCH = 20       # resting orders read per query: enough for most requests
MAX_FILLS = 100  # per request: a bound on one transaction's size; what is left is answered unplaced
MAX_OPEN_ORDERS = 100  # per character, every region together

# The other side's best orders first. Plain reads, no range locks: the caller
# holds the book's lock (market_books), and only its holders write the book's
# orders, so what this reads stays true until the commit. The read view is
# made by the first plain read, this one, after the book's lock was granted:
# it sees every earlier holder's commit. (A locking range read here took
# next-key locks past the book's end, into the next book's orders and gaps:
# placers in different books deadlocked on each other's inserts.)
ASKS = ("SELECT id, character_id, price, quantity FROM market_orders"
        " WHERE region_id = ? AND type_id = ? AND is_buy = 0 AND price <= ? ORDER BY price, id LIMIT 20")
BIDS = ("SELECT id, character_id, price, quantity FROM market_orders"
        " WHERE region_id = ? AND type_id = ? AND is_buy = 1 AND price >= ? ORDER BY price DESC, id LIMIT 20")

# A trade the counterparty is told of once the transaction committed.
Notice = collections.namedtuple("Notice", "character_id order_id type_id quantity price")


class Placement:
    """One incoming order: who places it, where, and what happens to it."""

    def __init__(self, character_id, region_id, system_id, is_buy, type_id, quantity, price, request_row, balance):
        self.character_id, self.region_id, self.system_id = character_id, region_id, system_id
        self.is_buy, self.type_id, self.price, self.request_row = is_buy, type_id, price, request_row
        self.remaining = quantity
        self.start_balance = self.balance = balance  # the placer's wallet, locked: tracked as it moves
        self.spent = 0
        self.trades = []
        self.notices = []
        self.order_id = None

    def pay(self, tx, amount, reason, order_id):
        if amount > self.balance:
            raise InsufficientFunds("not enough ISK: the wallet holds %d, this order needs at least %d"
                                    % (self.start_balance, self.spent + amount))
        move(tx, self.character_id, -amount, reason, order_id, self.request_row)
        self.balance -= amount
        self.spent += amount

    def credit(self, tx, character_id, amount, reason, order_id):
        move(tx, character_id, amount, reason, order_id, self.request_row)
        if character_id == self.character_id:  # a trade with one's own order
            self.balance += amount

    def fill(self, tx):
        """Takes the best resting orders while the price crosses."""
        while self.remaining and len(self.trades) < MAX_FILLS:
            rows = tx.query(BIDS if not self.is_buy else ASKS, self.region_id, self.type_id, self.price)
            for order_id, owner, price, quantity in rows:
                self._trade(tx, order_id, owner, price, min(self.remaining, quantity), quantity)
                if not self.remaining or len(self.trades) == MAX_FILLS:
                    break
            if len(rows) < BATCH:
                break

    def _trade(self, tx, order_id, owner, price, quantity, resting_quantity):
        self._take(tx, order_id, resting_quantity, resting_quantity - quantity)
        cost = price * quantity
        if self.is_buy:
            buyer, seller = self.character_id, owner
            self.pay(tx, cost, "market buy", order_id)
        else:
            buyer, seller = owner, self.character_id
            self.credit(tx, owner, cost, "market escrow release", order_id)
            self.credit(tx, owner, -cost, "market buy", order_id)
        self.credit(tx, seller, cost, "market sale", order_id)
        tx.execute("INSERT INTO market_trades (market_request_id, region_id, type_id, price, quantity,"
                   " resting_order_id, taker_is_buy, buyer_id, seller_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   self.request_row, self.region_id, self.type_id, price, quantity, order_id, self.is_buy,
                   buyer, seller)
        self.remaining -= quantity
        self.trades.append({"price": price, "quantity": quantity})
        self.notices.append(Notice(owner, order_id, self.type_id, quantity, price))

    @staticmethod
    def _take(tx, order_id, read, left):
        """The resting order keeps `left` (a buy's escrow: price x left) or
        goes; the order is the first row of the trade written, before any
        wallet. Checked against what was `read`: the book's lock guarantees
        it, and a change would mean a writer without that lock."""
        if left:
            done = tx.execute("SET STATEMENT innodb_lock_wait_timeout=5 FOR UPDATE market_orders"
                              " SET quantity = ?, escrow = IF(is_buy, price * ?, 0) WHERE id = ? AND quantity = ?",
                              left, left, order_id, read)
        else:
            done = tx.execute("SET STATEMENT innodb_lock_wait_timeout=5 FOR DELETE FROM market_orders"
                              " WHERE id = ? AND quantity = ?", order_id, read)
        if done.rowcount != 1:
            raise RuntimeError("market order %d changed under its book's lock (read with %d left)" % (order_id, read))

    def rest(self, tx):
        """What is left becomes an order (a buy escrows its price x quantity)."""
        if not self.remaining or len(self.trades) == MAX_FILLS:
            return
        (open_orders,), = tx.query("SELECT COUNT(*) FROM market_orders WHERE character_id = ?", self.character_id)
        if open_orders >= MAX_OPEN_ORDERS:
            raise ValueError("too many open orders (%d): cancel some first" % open_orders)
        escrow = self.price * self.remaining if self.is_buy else 0
        self.order_id = tx.execute(
            "INSERT INTO market_orders (character_id, region_id, system_id, type_id, is_buy, price, quantity,"
            " quantity_entered, escrow) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self.character_id, self.region_id, self.system_id, self.type_id, self.is_buy, self.price,
            self.remaining, self.remaining + sum(t["quantity"] for t in self.trades), escrow).lastrowid
        if escrow:
            self.pay(tx, escrow, "market escrow", self.order_id)

    def answer(self):
        filled = sum(t["quantity"] for t in self.trades)
        return {"order_id": self.order_id, "filled": filled, "remaining": self.remaining, "trades": self.trades}
