"""The market's books audited from the database alone, before and after a run
(docs/market.md, "Auditing the books"): no money made or lost, no wallet
change without its row, every request's wallet rows and trades exactly what
its stored answer says, and, given the clients' own log of what they asked,
no request lost, answered differently or made by nobody.

    baseline = market_audit.snapshot()        # a JSON-able dict, before the run
    ...                                       # the run
    result = market_audit.check(baseline, trade_log=entries)
    result.problems   # ["request 12 (character 7, 'r-3'): answer lists 2 trades, market_trades holds 3", ...]
    result.counts     # {"requests": ..., "trades": ..., "wallet_rows": ..., "answered": ..., ...}

A character's offset is its balance minus the sum of its wallet_transactions:
the money it got from outside the market (its starting balance). Every market
move writes a row beside the balance change, so the offsets never change: a
wallet changed without its row, or a row without its change, moves one.

The trade log: one dict per request a client started, {"character_id": int,
"request_id": str, "outcome": "answered" | "refused" | "unknown"}, answered
ones with the answer's "order_id" (int or None), "filled" (int) and "trades"
(how many it listed). Lines of one (character_id, request_id) are one request
retried: its outcome is the last answered line's, else the last line's.

Take the snapshot and the check with the market quiet: each reads in one
transaction, but a request in flight at the snapshot gets ids below the
baseline's and commits after it. Memory: the baseline holds one int per
character, the log one small tuple per request; the requests are read a page
at a time.
"""

import json

import db

from characters import STARTING_BALANCE

PAGE = 5000          # market_requests rows read at once
LOOKUP = 500         # logged requests looked up by key at once
MAX_PROBLEMS = 1000  # kept in the result (all are counted)
TIMEOUT_S = 120      # per statement: the GROUP BYs read whole tables
OUTCOMES = ("answered", "refused", "unknown")

# One row per character: its balance (0 without a wallet) and the sum of its wallet rows.
_OFFSETS = ("SELECT c.id, w.character_id IS NOT NULL, COALESCE(w.balance, 0), COALESCE(t.total, 0) FROM characters c"
            " LEFT JOIN wallets w ON w.character_id = c.id"
            " LEFT JOIN (SELECT character_id, SUM(amount) AS total FROM wallet_transactions GROUP BY character_id) t"
            " ON t.character_id = c.id")
_TABLES = ("market_requests", "market_trades", "wallet_transactions")


def _money(tx):
    """Money in wallets plus money held in escrow by buy orders."""
    (wallets,), = tx.query("SELECT COALESCE(SUM(balance), 0) FROM wallets", timeout=TIMEOUT_S)
    (escrow,), = tx.query("SELECT COALESCE(SUM(escrow), 0) FROM market_orders", timeout=TIMEOUT_S)
    return int(wallets) + int(escrow)


def money():
    """Money in wallets plus money held in escrow by buy orders."""
    with db.transaction(TIMEOUT_S) as tx:
        return _money(tx)


def snapshot():
    """The baseline check() compares with: the money, every character's
    offset, the highest ids of the market's tables, and the offset a
    character made after it must have (its starting balance)."""
    with db.transaction(TIMEOUT_S) as tx:
        last = {table: int(tx.query("SELECT COALESCE(MAX(id), 0) FROM " + table, timeout=TIMEOUT_S)[0][0])
                for table in _TABLES}
        offsets = {str(character): int(balance) - int(total)
                   for character, _, balance, total in tx.query(_OFFSETS, timeout=TIMEOUT_S)}
        return {"money": _money(tx), "offsets": offsets, "last": last, "starting_balance": STARTING_BALANCE}


def funded(offsets):
    """The baseline of an empty market (no requests, trades or wallet rows)
    whose characters got `offsets` ({character_id: money}) from outside it;
    any other character got nothing."""
    return {"money": sum(offsets.values()), "offsets": {str(c): money for c, money in offsets.items()},
            "last": {table: 0 for table in _TABLES}, "starting_balance": 0}


def expected_rows(request, answer):
    """The wallet_transactions rows a request makes: a buy, two per trade
    (buyer, seller) and one for the escrow of what rests; a sell, three per
    trade (the resting buyer's escrow release and purchase, the seller); a
    cancel, the escrow release of a buy order (0 or 1)."""
    if request[0] == "cancel":
        return (0, 1)
    trades = len(answer["trades"])
    if request[1] == "buy":
        return (2 * trades + (answer["order_id"] is not None),)
    return (3 * trades,)


class Result:
    """What check() found: `problems` (at most MAX_PROBLEMS kept, every one
    counted in counts["problems"]) and `counts`."""

    def __init__(self):
        self.problems = []
        self.counts = dict.fromkeys(
            ("problems", "characters", "new_characters", "requests", "trades", "wallet_rows",
             "wallet_rows_outside_market", "open_orders", "log_lines", "answered", "refused", "unknown",
             "unknown_with_row", "answered_before_baseline"), 0)

    @property
    def ok(self):
        return not self.counts["problems"]

    def problem(self, text):
        self.counts["problems"] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def summary(self, limit=20):
        """A JSON-able dict: the counts and the first `limit` problems."""
        return dict(self.counts, first_problems=self.problems[:limit])


def check(baseline, trade_log=None):
    """A Result: the books now against `baseline` (snapshot()'s or funded()'s
    dict, or either after a JSON round trip) and, given, the trade log (an
    iterable of dicts, module docstring)."""
    _check_baseline(baseline)
    result = Result()
    log = None if trade_log is None else _read_log(trade_log, result)
    last = baseline["last"]
    with db.transaction(TIMEOUT_S) as tx:
        brought = _check_offsets(tx, baseline, result)
        moved = _check_orphans(tx, last, result)
        expected, found = baseline["money"] + brought + moved, _money(tx)
        if found != expected:
            result.problem("money made or lost: %d in wallets and escrow, expected %d (%d at the baseline, %d brought"
                           " by new characters, %d moved by wallet rows outside the market)"
                           % (found, expected, baseline["money"], brought, moved))
        _check_orders(tx, result)
        for page in _pages(tx, last["market_requests"]):
            _check_requests(tx, page, log, result)
        if log is not None:
            _check_unmatched(tx, log, result)
    return result


def _check_baseline(baseline):
    """ValueError unless `baseline` has snapshot()'s shape."""
    if not isinstance(baseline, dict):
        raise ValueError("a baseline is a JSON object, not %s" % type(baseline).__name__)
    missing = [key for key in ("money", "offsets", "last", "starting_balance") if key not in baseline]
    missing += ["last." + table for table in _TABLES if table not in baseline.get("last", {})]
    if missing:
        raise ValueError("the baseline lacks %s: not market_audit.snapshot()'s" % ", ".join(missing))


def _check_offsets(tx, baseline, result):
    """Every character's offset against the baseline's; the money the new ones brought."""
    offsets = {int(character): offset for character, offset in baseline["offsets"].items()}
    starting = baseline["starting_balance"]
    brought = 0
    for character, has_wallet, balance, total in tx.query(_OFFSETS, timeout=TIMEOUT_S):
        result.counts["characters"] += 1
        balance, total = int(balance), int(total)
        offset = balance - total
        expected = offsets.pop(character, None)
        if expected is None:  # new since the baseline: its starting balance, or nothing yet without a wallet
            result.counts["new_characters"] += 1
            brought += offset
            expected = starting if has_wallet else 0
        if offset != expected:
            result.problem("character %d: balance %d, wallet rows sum to %d: %d from outside the market,"
                           " expected %d (a wallet change without its row, or a row without its change)"
                           % (character, balance, total, offset, expected))
    for character, offset in sorted(offsets.items()):
        if offset:
            result.problem("character %d: gone since the baseline, which had %d of its money from outside"
                           " the market" % (character, offset))
    return brought


def _check_orders(tx, result):
    (result.counts["open_orders"],), = tx.query("SELECT COUNT(*) FROM market_orders", timeout=TIMEOUT_S)
    bad = tx.query("SELECT id, is_buy, price, quantity, escrow FROM market_orders"
                   " WHERE quantity <= 0 OR escrow != IF(is_buy, price * quantity, 0) ORDER BY id LIMIT ?",
                   MAX_PROBLEMS, timeout=TIMEOUT_S)
    for order, is_buy, price, quantity, escrow in bad:
        result.problem("order %d (%s %d at %d): escrow %d, expected %d%s"
                       % (order, "buy" if is_buy else "sell", quantity, price, escrow,
                          price * quantity if is_buy else 0, "" if quantity > 0 else " (and nothing left to trade)"))


def _check_orphans(tx, last, result):
    """Trades and wallet rows of requests that do not exist, or that predate
    the baseline (a request's rows are written with it, never later). The
    money the wallet rows outside the market (no request) moved since the baseline."""
    (result.counts["trades"],), = tx.query("SELECT COUNT(*) FROM market_trades WHERE id > ?",
                                           last["market_trades"], timeout=TIMEOUT_S)
    (result.counts["wallet_rows"],), = tx.query("SELECT COUNT(*) FROM wallet_transactions WHERE id > ?",
                                                last["wallet_transactions"], timeout=TIMEOUT_S)
    (outside, moved), = tx.query("SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM wallet_transactions"
                                 " WHERE id > ? AND market_request_id IS NULL", last["wallet_transactions"],
                                 timeout=TIMEOUT_S)
    result.counts["wallet_rows_outside_market"] = outside
    for table, what in (("market_trades", "trade"), ("wallet_transactions", "wallet row")):
        rows = tx.query("SELECT t.id, t.market_request_id, r.id IS NULL FROM " + table + " t"
                        " LEFT JOIN market_requests r ON r.id = t.market_request_id"
                        " WHERE t.id > ? AND t.market_request_id IS NOT NULL AND (r.id IS NULL OR r.id <= ?)"
                        " ORDER BY t.id LIMIT ?", last[table], last["market_requests"], MAX_PROBLEMS,
                        timeout=TIMEOUT_S)
        for row, request, missing in rows:
            result.problem("%s %d: its market request %d %s" % (
                what, row, request, "does not exist" if missing else "is from before the baseline"))
    return int(moved)


def _pages(tx, after):
    """The market_requests rows after id `after`, PAGE at a time."""
    while True:
        rows = tx.query("SELECT id, character_id, request_id, request, answer FROM market_requests"
                        " WHERE id > ? ORDER BY id LIMIT ?", after, PAGE, timeout=TIMEOUT_S)
        if not rows:
            return
        yield rows
        after = rows[-1][0]


def _check_requests(tx, page, log, result):
    """Each request's wallet rows and trades against its stored answer, and against the log's entry."""
    first, end = page[0][0], page[-1][0]
    wallet_rows = dict(tx.query("SELECT market_request_id, COUNT(*) FROM wallet_transactions"
                                " WHERE market_request_id BETWEEN ? AND ? GROUP BY market_request_id",
                                first, end, timeout=TIMEOUT_S))
    trades = {}
    for request_row, price, quantity in tx.query("SELECT market_request_id, price, quantity FROM market_trades"
                                                 " WHERE market_request_id BETWEEN ? AND ? ORDER BY id",
                                                 first, end, timeout=TIMEOUT_S):
        trades.setdefault(request_row, []).append({"price": price, "quantity": quantity})
    for row, character, request_id, request, answer in page:
        result.counts["requests"] += 1
        name = "request %d (character %d, %r)" % (row, character, request_id.decode("utf-8", "replace"))
        if answer is None:
            result.problem("%s %s: no answer stored" % (name, request))
            continue
        request, answer = json.loads(request), json.loads(answer)
        count = wallet_rows.get(row, 0)
        expected = expected_rows(request, answer)
        if count not in expected:
            result.problem("%s %s -> %s: %d wallet rows, expected %s"
                           % (name, request, answer, count, " or ".join(map(str, expected))))
        listed, held = answer.get("trades", []), trades.get(row, [])
        if len(listed) != len(held):
            result.problem("%s: its answer lists %d trades, market_trades holds %d" % (name, len(listed), len(held)))
        elif listed != held:
            result.problem("%s: its answer lists trades %s, market_trades holds %s" % (name, listed, held))
        if log is not None:
            _match(log, (character, request_id), name, answer, result)


def _match(log, key, name, answer, result):
    """The log's entry for one request row (taken out of `log`)."""
    entry = log["entries"].pop(key, None)
    if entry is None:
        if key[0] in log["characters"]:
            result.problem("%s: a request no bot made (its character's requests are logged, this one is not)" % name)
        return
    outcome, logged = entry
    if outcome == "refused":
        result.problem("%s: the bot was refused (an error), yet the request is stored with answer %s" % (name, answer))
    elif outcome == "unknown":
        result.counts["unknown_with_row"] += 1
    else:
        stored = (answer.get("order_id"), answer.get("filled"), len(answer.get("trades", [])))
        if stored != logged:
            result.problem("%s: differs: the bot got order_id %r, filled %r, %d trades; stored order_id %r,"
                           " filled %r, %d trades" % ((name,) + logged + stored))


def _check_unmatched(tx, log, result):
    """Logged requests with no row after the baseline: answered ones are lost
    unless a row from before the baseline gave that answer."""
    answered = [(key, logged) for key, (outcome, logged) in log["entries"].items() if outcome == "answered"]
    for start in range(0, len(answered), LOOKUP):
        chunk = answered[start:start + LOOKUP]
        rows = tx.query("SELECT character_id, request_id, id, answer FROM market_requests"
                        " WHERE (character_id, request_id) IN (%s)" % ",".join(["(?, ?)"] * len(chunk)),
                        *[part for key, _ in chunk for part in key], timeout=TIMEOUT_S)
        stored = {(character, request_id): (row, answer) for character, request_id, row, answer in rows}
        for key, logged in chunk:
            name = "request %r of character %d" % (key[1].decode("utf-8", "replace"), key[0])
            if key not in stored:
                result.problem("%s: lost: the bot got an answer (order_id %r, filled %r, %d trades), the database"
                               " has no such request" % ((name,) + logged))
                continue
            row, answer = stored[key]
            answer = json.loads(answer) if answer is not None else {}
            found = (answer.get("order_id"), answer.get("filled"), len(answer.get("trades", [])))
            if found != logged:
                result.problem("%s (row %d, from before the baseline): differs: the bot got order_id %r, filled %r,"
                               " %d trades; stored order_id %r, filled %r, %d trades" % ((name, row) + logged + found))
            else:
                result.counts["answered_before_baseline"] += 1


def _integer(entry, field, line, none=False):
    if field not in entry:
        raise ValueError("trade log line %d: no %r" % (line, field))
    value = entry[field]
    if type(value) is not int and not (none and value is None):
        raise ValueError("trade log line %d: %r must be an integer%s, not %r"
                         % (line, field, " or null" if none else "", value))
    return value


def _read_log(trade_log, result):
    """{"entries": {(character_id, request_id bytes): (outcome, (order_id, filled, trades) or None)},
    "characters": the characters logged}; ValueError for a malformed entry."""
    entries, characters = {}, set()
    for line, entry in enumerate(trade_log, 1):
        result.counts["log_lines"] += 1
        if not isinstance(entry, dict):
            raise ValueError("trade log line %d: an object, not %r" % (line, entry))
        character = _integer(entry, "character_id", line)
        request_id = entry.get("request_id")
        if type(request_id) is not str:
            raise ValueError("trade log line %d: 'request_id' must be a string, not %r" % (line, request_id))
        outcome = entry.get("outcome")
        if outcome not in OUTCOMES:
            raise ValueError("trade log line %d: 'outcome' must be one of %s, not %r" % (line, OUTCOMES, outcome))
        answer = None
        if outcome == "answered":
            answer = (_integer(entry, "order_id", line, none=True), _integer(entry, "filled", line),
                      _integer(entry, "trades", line))
        key = (character, request_id.encode("utf-8"))
        characters.add(character)
        before = entries.get(key)
        if before and before[0] == "answered":
            if answer is None:
                continue  # a retry's error or silence after an answer: the answer stands
            if answer != before[1]:
                result.problem("request %r of character %d: answered twice, differently: %s, then %s"
                               % (request_id, character, before[1], answer))
        entries[key] = (outcome, answer)
    for outcome, _ in entries.values():
        result.counts[outcome] += 1
    return {"entries": entries, "characters": characters}
