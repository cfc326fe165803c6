"""One market request per book at a time in this process (market_ledger).

A request's transaction holds its book's row lock (market_books) from its
third statement to its commit. Requests for a hot book that began their
transactions anyway would each hold a database connection while they wait
on that lock, up to the lock wait timeout: a few of them take the whole
pool, and the node's other work (its heartbeat, the settings watch, other
books) waits with them. Here they wait as tasklets instead, in order,
holding nothing; only the one whose turn it is runs its transaction. Nodes
still meet on the book's row lock in the database, one request each.

    with market_turns.turn(region_id, type_id):
        ... the transaction ...

A request that waits longer than TURN_WAIT_S is refused with MarketBusy,
before its transaction began: nothing of it is stored, and the client may
send it again (with the same request id).
"""

import contextlib

import uthread

TURN_WAIT_S = 10.0


class MarketBusy(RuntimeError):
    """The book's queue did not reach this request within TURN_WAIT_S."""


_books = {}  # (region_id, type_id) -> [CriticalSection, requests holding or waiting]


@contextlib.contextmanager
def turn(region_id, type_id, wait_s=None):
    """This tasklet's turn at the book, waiting at most `wait_s` (TURN_WAIT_S)."""
    key = (region_id, type_id)
    entry = _books.get(key)
    if entry is None:
        entry = _books[key] = [uthread.CriticalSection(), 0]
    entry[1] += 1
    try:
        if not entry[0].acquire(timeout=TURN_WAIT_S if wait_s is None else wait_s):
            raise MarketBusy("the market of type %d in region %d is busy: %d requests wait; send it again later"
                             % (type_id, region_id, entry[1] - 1))
        try:
            yield
        finally:
            entry[0].release()
    finally:
        entry[1] -= 1
        if entry[1] == 0:
            del _books[key]


def waiting():
    """{(region_id, type_id): requests holding or waiting} (for tests and the console)."""
    return {key: entry[1] for key, entry in _books.items()}
