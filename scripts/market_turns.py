"""One market request per book at a time in this process, and one send of
a request id (market_ledger).

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
send it again (with the same request id). TURN_WAIT_S is below the proxy's
relay timeout (session_calls.RELAY_TIMEOUT): the client hears "busy", not
"no answer".

A client that heard nothing sends the request again with the same id; if
the first send still waits here, the second would queue a second time for
the same work (a queue of timed-out sends feeds on itself). `sole_send`
makes it wait for the first to end instead, then go on: it is answered
from the first's row like any retry.

    with market_turns.sole_send(character_id, request_id), market_turns.turn(region_id, type_id):
        ...
"""

import contextlib

import uthread

TURN_WAIT_S = 5.0


class MarketBusy(RuntimeError):
    """The book's queue did not reach this request within TURN_WAIT_S."""


_books = {}  # (region_id, type_id) -> [CriticalSection, requests holding or waiting]
_sends = {}  # (character_id, request_id) -> Event set when the send running here ended


@contextlib.contextmanager
def sole_send(character_id, request_id, wait_s=None):
    """The only send of this request running in this process: an earlier one
    is waited for (at most `wait_s`, TURN_WAIT_S: then MarketBusy)."""
    key = (character_id, request_id)
    while (earlier := _sends.get(key)) is not None:
        if not earlier.wait(TURN_WAIT_S if wait_s is None else wait_s):
            raise MarketBusy("request %.80r of character %d: an earlier send of it still waits for its turn; send it "
                             "again later" % (request_id, character_id))
    ended = _sends[key] = uthread.Event()
    try:
        yield
    finally:
        del _sends[key]
        ended.set()


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
    """{(region_id, type_id): requests holding or waiting its turn} (what waits in this process)."""
    return {key: entry[1] for key, entry in _books.items()}
