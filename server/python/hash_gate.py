"""At most a few password hashes at once in this process; a bounded queue
for the rest.

Each scrypt check costs ~50 ms of a core and 16 MiB (accounts.py). Handed
to the engine's worker pool as they come, a login storm ran hundreds at
once: the pool grew a thread per check, the checks took every core from the
game loop (the proxy's heartbeat missed the cluster's node timeout and the
node was marked gone), and each live check held its 16 MiB. Here a login
waits its turn instead (FIFO, only its tasklet waits), and past the queue's
bound it is refused at once with a wait the client can retry after.

    gate = HashGate(concurrent=1, queue=200)
    gate.run(accounts.verify_password, password, stored)   # Busy when the queue is full
"""

import math
import os
import time

import gameloop
import uthread

HASH_TIMEOUT_S = 30.0  # one hash on its worker: far more than it ever takes
FIRST_GUESS_S = 0.05   # a check's duration before one was measured


class Busy(Exception):
    """Too many hashes waiting: args (the message, seconds after which a retry may get through)."""

    def __str__(self):
        return self.args[0]

    @property
    def retry_after(self):
        return self.args[1]


def default_concurrency():
    """Half the CPUs this process may run on (at least one): the game loop,
    the IO and database threads keep the other half in a login storm."""
    return max(1, len(os.sched_getaffinity(0)) // 2)


class HashGate:

    def __init__(self, concurrent=None, queue=200):
        self.running = 0             # hashes on the workers now
        self.mean_s = FIRST_GUESS_S  # a moving average of the hashes' durations
        self.configure(concurrent, queue)

    def configure(self, concurrent=None, queue=200):
        """concurrent: hashes at once (None or 0: default_concurrency());
        queue: hashes that may wait for a turn beyond those."""
        concurrent = concurrent or default_concurrency()
        if concurrent < 1 or queue < 0:
            raise ValueError("a hash gate takes 1 or more hashes at once and a queue of 0 or more, not %r and %r"
                             % (concurrent, queue))
        self.concurrent, self.queue = concurrent, queue
        self.slots = uthread.Semaphore(concurrent)

    def admit(self):
        """Busy if a hash would be refused now: a caller skips the work that
        would come before it (a login's database read) in a storm."""
        if self.slots.value == 0:
            self._refuse_if_full(self.slots)

    def run(self, fn, *args):
        """fn(*args) on a worker thread once a turn is free; only the calling
        tasklet waits. Busy when `queue` hashes wait already."""
        slots = self.slots  # configure() may replace it meanwhile: give back what was taken
        if not slots.acquire(blocking=False):
            self._refuse_if_full(slots)
            if not slots.acquire(timeout=HASH_TIMEOUT_S):
                raise Busy("no turn for a password check within %g s" % HASH_TIMEOUT_S,
                           self.retry_after(slots.waiting))
        self.running += 1
        start = time.monotonic()
        try:
            # A timeout here gives the turn back while the worker still
            # hashes (it cannot be stopped): the bound holds but for that.
            return gameloop.call_in_thread(fn, *args, timeout=HASH_TIMEOUT_S)
        finally:
            self.mean_s += (time.monotonic() - start - self.mean_s) / 8
            self.running -= 1
            slots.release()

    def _refuse_if_full(self, slots):
        if slots.waiting >= self.queue:
            wait = self.retry_after(slots.waiting)
            raise Busy("%d password checks waiting (at most %d), retry in %d s" % (slots.waiting, self.queue, wait),
                       wait)

    def retry_after(self, waiting):
        """Whole seconds until `waiting` queued hashes are done (at least 1)."""
        return max(1, math.ceil(waiting * self.mean_s / self.concurrent))
