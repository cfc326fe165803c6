"""The market's requests, each in one database transaction (docs/market.md).

    result = market_ledger.place(character_id, region_id, system_id, "buy", type_id, quantity, price, request_id)
    result.answer    # {"order_id", "filled", "remaining", "trades": [{"price", "quantity"}]}
    result.notices   # the counterparties' trades, to tell them (nothing when replayed)
    market_ledger.cancel(character_id, order_id, request_id).answer   # {"order_id", "cancelled"}

Idempotency: a request's first statement inserts its (character, request_id)
row in `market_requests`; the row gets the answer before the commit. A retry
meets the key and returns that answer, changing nothing — also a retry that
raced the first: its insert waits on the first's uncommitted row and fails
with a duplicate key once the first commits (or goes ahead if the first
rolled back). A request that failed (insufficient funds, a bad order id)
left no row: its retry runs again.

A place takes its book's turn in this process first (market_turns): the
requests for one book wait as tasklets, not each on a database connection.

Deadlocks (1213) and lock wait timeouts (1205) end the transaction on the
server; the whole request then runs again, at most ATTEMPTS times in all
(the idempotency row makes that safe).
"""

import collections
import json
import logging
import random

import db
import uthread

import market_matching
import market_turns
from market_wallets import lock_balance, move

log = logging.getLogger("shard.market")

ATTEMPTS = 4
RETRIED = {1213: "deadlock", 1205: "lock wait timeout"}
DUPLICATE_KEY = 1062

# Bounds on what a client may ask (every argument comes from the network).
MAX_TYPE_ID = 2**31 - 1
MAX_QUANTITY = 10**9
MAX_PRICE = 10**13        # hundredths of an ISK
MAX_ORDER_VALUE = 10**17  # price x quantity: sums of them stay far from 2**63
MAX_REQUEST_ID_BYTES = 64
MAX_HISTORY = 500
BOOK_LEVELS = 100         # price levels per side in book()

Result = collections.namedtuple("Result", "answer notices replayed")

stats = {"requests": 0, "replayed": 0, "retries": 0, "trades": 0}


def _integer(name, value, low, high):
    if type(value) is not int:  # bool is an int: refused too
        raise TypeError("%s must be an integer, not %s" % (name, type(value).__name__))
    if not low <= value <= high:
        raise ValueError("%s must be in [%d, %d], not %d" % (name, low, high, value))
    return value


def _request_id(value):
    if type(value) is not str:
        raise TypeError("request_id must be a string, not %s" % type(value).__name__)
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError("request_id must be valid UTF-8 text") from None
    if not 0 < size <= MAX_REQUEST_ID_BYTES:
        raise ValueError("request_id must be 1 to %d bytes of UTF-8, not %d" % (MAX_REQUEST_ID_BYTES, size))
    return value


def check_type(type_id):
    return _integer("type_id", type_id, 1, MAX_TYPE_ID)


def check_order(side, type_id, quantity, price):
    """(is_buy, type_id, quantity, price), or TypeError/ValueError saying what is wrong."""
    if type(side) is not str:
        raise TypeError("side must be a string, not %s" % type(side).__name__)
    if side not in ("buy", "sell"):
        raise ValueError("side must be 'buy' or 'sell', not %.40r" % side)
    check_type(type_id)
    _integer("quantity", quantity, 1, MAX_QUANTITY)
    _integer("price", price, 1, MAX_PRICE)
    if price * quantity > MAX_ORDER_VALUE:
        raise ValueError("price x quantity must be at most %d" % MAX_ORDER_VALUE)
    return side == "buy", type_id, quantity, price


def place(character_id, region_id, system_id, side, type_id, quantity, price, request_id):
    """Matches the order in `region_id`, rests what is left; a Result."""
    is_buy, type_id, quantity, price = check_order(side, type_id, quantity, price)
    request_id = _request_id(request_id)
    request = json.dumps(["place", side, type_id, quantity, price])
    with market_turns.sole_send(character_id, request_id), market_turns.turn(region_id, type_id):
        return _run(_place, character_id, region_id, system_id, is_buy, type_id, quantity, price, request_id,
                    request)


def cancel(character_id, order_id, request_id):
    """Cancels one's own open order (a buy's escrow back to the wallet); a Result."""
    _integer("order_id", order_id, 1, 2**63 - 1)
    request_id = _request_id(request_id)
    return _run(_cancel, character_id, order_id, request_id, json.dumps(["cancel", order_id]))


def _run(work, *args):
    stats["requests"] += 1
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with db.transaction() as tx:
                result = work(tx, *args)
            if result.replayed:
                stats["replayed"] += 1
                log.info("market request %.80r of character %d: a retry, answered with its first answer",
                         args[-2], args[0])
            else:
                stats["trades"] += len(result.answer.get("trades", ()))
            return result
        except db.Error as e:
            if e.code not in RETRIED or attempt == ATTEMPTS:
                raise
            why = RETRIED[e.code]
        # Outside the handler: a tasklet never waits inside one.
        stats["retries"] += 1
        log.info("market request of character %d: %s, attempt %d of %d", args[0], why, attempt + 1, ATTEMPTS)
        uthread.Sleep(random.uniform(0, 0.01 * attempt))  # the other party of a deadlock finishes first


def _claim(tx, character_id, request_id, request):
    """(row id, None) for a new request; (None, first answer) for a retry."""
    try:
        tx.execute("SET STATEMENT innodb_lock_wait_timeout=5 FOR"
                   " INSERT INTO market_requests (character_id, request_id, request) VALUES (?, ?, ?)",
                   character_id, request_id, request)
    except db.Error as e:
        if e.code != DUPLICATE_KEY:
            raise
    else:
        # Asked here: db.py reports lastrowid only for statements that begin with INSERT.
        (row,), = tx.query("SELECT LAST_INSERT_ID()")
        return row, None
    # A locking read: the committed row, whatever this transaction saw before.
    (first, answer), = tx.query("SELECT request, answer FROM market_requests WHERE character_id = ? AND request_id = ?"
                                " LOCK IN SHARE MODE", character_id, request_id)
    if first != request:
        raise ValueError("request_id %r was already used for another request (%s)" % (request_id, first))
    return None, json.loads(answer)


def _lock_book(tx, region_id, type_id):
    """Makes the book's row if new and locks it (market_books, 0008)."""
    tx.execute("SET STATEMENT innodb_lock_wait_timeout=5 FOR"
               " INSERT INTO market_books (region_id, type_id) VALUES (?, ?) ON DUPLICATE KEY UPDATE type_id = type_id",
               region_id, type_id)


def _finish(tx, request_row, answer, notices):
    tx.execute("UPDATE market_requests SET answer = ? WHERE id = ?", json.dumps(answer), request_row)
    return Result(answer, notices, False)


def _place(tx, character_id, region_id, system_id, is_buy, type_id, quantity, price, request_id, request):
    request_row, first = _claim(tx, character_id, request_id, request)
    if request_row is None:
        return Result(first, [], True)
    _lock_book(tx, region_id, type_id)
    order = market_matching.Placement(character_id, region_id, system_id, is_buy, type_id, quantity, price,
                                      request_row, lock_balance(tx, character_id))
    order.fill(tx)
    order.rest(tx)
    return _finish(tx, request_row, order.answer(), order.notices)


def _cancel(tx, character_id, order_id, request_id, request):
    request_row, first = _claim(tx, character_id, request_id, request)
    if request_row is None:
        return Result(first, [], True)
    mine = "no open order %d of yours" % order_id
    book = tx.query("SELECT region_id, type_id FROM market_orders WHERE id = ? AND character_id = ?",
                    order_id, character_id)
    if not book:
        raise LookupError(mine)
    _lock_book(tx, *book[0])
    rows = tx.query("SELECT quantity, escrow FROM market_orders WHERE id = ? FOR UPDATE", order_id)
    if not rows:  # filled or cancelled since the first read
        raise LookupError(mine)
    (quantity, escrow), = rows
    if escrow:
        move(tx, character_id, escrow, "market escrow release", order_id, request_row)
    tx.execute("DELETE FROM market_orders WHERE id = ?", order_id)
    return _finish(tx, request_row, {"order_id": order_id, "cancelled": quantity}, [])


def balance(character_id):
    rows = db.query("SELECT balance FROM wallets WHERE character_id = ?", character_id)
    return rows[0][0] if rows else 0


def book(region_id, type_id):
    """{"buy": [[price, quantity], ...] best (highest) first, "sell": [...] lowest first}."""
    check_type(type_id)
    bids = db.query("SELECT price, SUM(quantity) FROM market_orders WHERE region_id = ? AND type_id = ? AND is_buy = 1"
                    " GROUP BY price ORDER BY price DESC LIMIT 100", region_id, type_id)
    asks = db.query("SELECT price, SUM(quantity) FROM market_orders WHERE region_id = ? AND type_id = ? AND is_buy = 0"
                    " GROUP BY price ORDER BY price LIMIT 100", region_id, type_id)
    return {"buy": [[p, int(q)] for p, q in bids], "sell": [[p, int(q)] for p, q in asks]}


def my_orders(character_id):
    rows = db.query("SELECT id AS order_id, IF(is_buy, 'buy', 'sell') AS side, region_id, system_id, type_id, price,"
                    " quantity, quantity_entered, escrow, UNIX_TIMESTAMP(created_at) AS time FROM market_orders"
                    " WHERE character_id = ? ORDER BY id", character_id, named=True)
    return rows


def history(character_id, limit=50):
    """The wallet's transactions, newest first."""
    _integer("limit", limit, 1, MAX_HISTORY)
    return db.query("SELECT id, amount, balance_after, reason, order_id, UNIX_TIMESTAMP(created_at) AS time"
                    " FROM wallet_transactions WHERE character_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                    character_id, limit, named=True)
