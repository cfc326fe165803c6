"""Money moves inside a market transaction: every change of a wallet's
balance is one `wallet_transactions` row with the balance after it, tied to
the market request that caused it (docs/market.md).

All statements that take a lock wait at most LOCK_WAIT_S: a lock held longer
ends the statement with 1205, which market_ledger retries, instead of the
server's 50 s (longer than a db call's own timeout)."""

import db

LOCK_WAIT_S = 5  # written into the statements below (SET STATEMENT ... FOR): keep them equal

CONSTRAINT_FAILED = 4025  # the wallet_not_negative CHECK (0008)


class InsufficientFunds(Exception):
    """The wallet cannot pay: the whole request is rolled back."""


def lock_balance(tx, character_id):
    """The wallet's balance, its row locked to the end of the transaction
    (0 and nothing locked for a character without a wallet: no wallet row
    means no money yet)."""
    rows = tx.query("SET STATEMENT innodb_lock_wait_timeout=5 FOR"
                    " SELECT balance FROM wallets WHERE character_id = ? FOR UPDATE", character_id)
    return rows[0][0] if rows else 0


def move(tx, character_id, amount, reason, order_id, request_row):
    """Adds `amount` (negative: takes) to the wallet and records it. A credit
    makes a missing wallet; a debit the wallet cannot pay raises
    InsufficientFunds (the server's CHECK: callers that know the balance
    check first and say more)."""
    if amount > 0:
        tx.execute("SET STATEMENT innodb_lock_wait_timeout=5 FOR"
                   " INSERT INTO wallets (character_id, balance) VALUES (?, ?)"
                   " ON DUPLICATE KEY UPDATE balance = balance + VALUES(balance)", character_id, amount)
    else:
        # Not the upsert: the server checks the row to insert, (id, -amount), before it finds the key.
        try:
            done = tx.execute("SET STATEMENT innodb_lock_wait_timeout=5 FOR"
                              " UPDATE wallets SET balance = balance + ? WHERE character_id = ?", amount, character_id)
        except db.Error as e:
            if e.code != CONSTRAINT_FAILED:
                raise
            done = None
        if not done or not done.rowcount:
            raise InsufficientFunds("character %d cannot pay %d" % (character_id, -amount))
    tx.execute("INSERT INTO wallet_transactions (character_id, amount, balance_after, reason, order_id,"
               " market_request_id) SELECT character_id, ?, balance, ?, ?, ? FROM wallets WHERE character_id = ?",
               amount, reason, order_id, request_row, character_id)
