"""The database for tasklets: MySQL/MariaDB through a pool of database threads.

    import db
    db.connect()                      # settings from SHARD_DB_* (docs/database.md)
    rows = db.query("SELECT id, name FROM characters WHERE account = ?", account_id)
    done = db.execute("INSERT INTO accounts (name) VALUES (?)", name)
    done.rowcount, done.lastrowid
    with db.transaction() as tx:      # one connection from here to commit/rollback
        tx.execute("UPDATE wallets SET balance = balance - ? WHERE id = ?", price, buyer)
        tx.execute("UPDATE wallets SET balance = balance + ? WHERE id = ?", price, seller)

Parameters are always bound (`?` placeholders), never formatted into the SQL.
Only the calling tasklet waits; everything else runs. A failed statement
raises db.Error with the server's .code, .sqlstate and .message; a call that
outlives its timeout raises TimeoutError. Values: None, int, float, str,
bytes, decimal.Decimal (DECIMAL columns), datetime.datetime, datetime.date,
datetime.timedelta (TIME columns, as MySQLdb has them).
"""

import atexit
import collections
import os

import _db
from _db import Error

__all__ = ["Error", "connect", "close", "query", "execute", "transaction", "stats", "Executed", "settings_from_env"]

_QUERY, _EXECUTE, _BEGIN, _COMMIT, _ROLLBACK = range(5)

DEFAULT_TIMEOUT = _db.DEFAULT_TIMEOUT  # seconds; query's own default too
POOL_STOPPED = _db.POOL_STOPPED
TRANSACTION_LOST = _db.TRANSACTION_LOST

Executed = collections.namedtuple("Executed", "rowcount lastrowid")


def settings_from_env(environ=os.environ):
    """The connection settings SHARD_DB_* name (docs/database.md)."""
    password_file = environ.get("SHARD_DB_PASSWORD_FILE", "")
    password = ""
    if password_file:
        with open(password_file, encoding="utf-8") as f:
            password = f.read().strip()
    return {
        "host": environ.get("SHARD_DB_HOST", "127.0.0.1"),
        "port": int(environ.get("SHARD_DB_PORT", "3306")),
        "socket": environ.get("SHARD_DB_SOCKET", ""),
        "user": environ.get("SHARD_DB_USER", "shard"),
        "password": password,
        "database": environ.get("SHARD_DB_DATABASE", "shard"),
        "pool_size": int(environ.get("SHARD_DB_POOL_SIZE", "4")),
        "connect_timeout": int(environ.get("SHARD_DB_CONNECT_TIMEOUT", "5")),
        # TLS: any set requires it; the CA verifies the server (docs/database.md).
        "ssl_ca": environ.get("SHARD_DB_SSL_CA", ""),
        "ssl_cert": environ.get("SHARD_DB_SSL_CERT", ""),
        "ssl_key": environ.get("SHARD_DB_SSL_KEY", ""),
    }


def connect(**overrides):
    """Starts the pool: settings_from_env(), then `overrides` (same names).
    The threads connect on their first call."""
    settings = settings_from_env()
    settings.update(overrides)
    _db.start(**settings)


def close():
    """Stops the pool: queued calls fail, open transactions roll back."""
    _db.stop()


atexit.register(close)


# query(sql, *params, timeout=DEFAULT_TIMEOUT, named=False, urgent=False): the
# rows, a list of tuples, or of dicts by column name with named=True; urgent:
# queued ahead of the calls waiting for a connection (the cluster directory's
# heartbeat, which must not wait out a burst of client work). The native function
# itself: every query's Python work runs on the tasklets' one thread, and a
# wrapper's frame and argument tuple were a measurable part of it.
query = _db.query


def execute(sql, *params, timeout=DEFAULT_TIMEOUT, urgent=False):
    """Executed(rowcount, lastrowid): lastrowid after an INSERT or REPLACE, else 0.
    urgent: queued ahead of the calls waiting for a connection (as query's)."""
    return Executed(*_db.call(_EXECUTE, sql, params, 0, timeout, False, urgent))


def stats():
    """The pool's statistics: size, connected, in_use, transactions, waiting,
    queries, errors, disconnects, latency_count, latency_p50_s, _p99_s, _max_s."""
    return _db.stats()


class Transaction:
    """One connection from BEGIN to COMMIT or ROLLBACK. As a context manager:
    commits when the block ends normally, rolls back when it raises (the kill
    of its tasklet included). The rollback never waits, so a dying tasklet
    does not block."""

    def __init__(self, timeout=DEFAULT_TIMEOUT):
        self.timeout = timeout
        self._tx = 0

    def begin(self):
        if self._tx:
            raise RuntimeError("transaction already begun")
        self._tx = _db.call(_BEGIN, "", (), 0, self.timeout, False)
        return self

    def _id(self):
        if not self._tx:
            raise RuntimeError("no transaction: begin() it, or use `with db.transaction() as tx`")
        return self._tx

    def query(self, sql, *params, timeout=None, named=False):
        return _db.call(_QUERY, sql, params, self._id(), timeout or self.timeout, named)

    def execute(self, sql, *params, timeout=None):
        return Executed(*_db.call(_EXECUTE, sql, params, self._id(), timeout or self.timeout, False))

    def commit(self):
        tx, self._tx = self._id(), 0
        _db.call(_COMMIT, "", (), tx, self.timeout, False)

    def rollback(self):
        tx, self._tx = self._tx, 0
        if tx:
            _db.rollback_nowait(tx)

    def __enter__(self):
        return self.begin()

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and self._tx:
            self.commit()
        else:
            self.rollback()
        return False

    def __del__(self):
        # Dropped while open (never entered as a context): its connection must
        # not stay pinned.
        self.rollback()


def transaction(timeout=DEFAULT_TIMEOUT):
    return Transaction(timeout)
