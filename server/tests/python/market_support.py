"""The market's books, audited from the database alone (test_market*.py):
no money made or lost, and every request's wallet rows and trades exactly
what its stored answer says — so a lost or a duplicated transaction shows."""

import json

import db


def totals():
    """Money in wallets plus money held in escrow by buy orders."""
    (wallets,), = db.query("SELECT COALESCE(SUM(balance), 0) FROM wallets")
    (escrow,), = db.query("SELECT COALESCE(SUM(escrow), 0) FROM market_orders")
    return int(wallets) + int(escrow)


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


def audit(test, funded):
    """Fails `test` unless the books balance. `funded`: {character_id:
    money put into its wallet outside the market}."""
    test.assertEqual(totals(), sum(funded.values()), "money made or lost")
    for character, money in funded.items():
        rows = db.query("SELECT COALESCE(SUM(amount), 0) FROM wallet_transactions WHERE character_id = ?", character)
        balance = db.query("SELECT balance FROM wallets WHERE character_id = ?", character)
        test.assertEqual(int(rows[0][0]) + money, balance[0][0] if balance else 0,
                         "character %d: its wallet rows do not add up to its balance" % character)
    requests = db.query("SELECT id, request_id, request, answer FROM market_requests")
    for row, request_id, request, answer in requests:
        request, answer = json.loads(request), json.loads(answer)
        (count,), = db.query("SELECT COUNT(*) FROM wallet_transactions WHERE market_request_id = ?", row)
        test.assertIn(count, expected_rows(request, answer),
                      "request %r %s -> %s: %d wallet rows" % (request_id, request, answer, count))
        (trades,), = db.query("SELECT COUNT(*) FROM market_trades WHERE market_request_id = ?", row)
        test.assertEqual(trades, len(answer.get("trades", ())), "request %r: trades" % request_id)
    bad = db.query("SELECT id, is_buy, price, quantity, escrow FROM market_orders"
                   " WHERE quantity <= 0 OR escrow != IF(is_buy, price * quantity, 0)")
    test.assertEqual(bad, [], "orders whose escrow is not price x quantity left")
    return len(requests)
