"""uthread: fair, blocking helpers for game logic on top of stackless.

Everything here blocks only the calling tasklet. Waiters are woken in FIFO
order, and waking never switches: the woken tasklet is made runnable and runs
in its round-robin turn. The locks (Semaphore, CriticalSection, Event,
Condition, Queue) keep their state under a real mutex in C++ (_engine), so they
also work between tasklets of different threads.

Timeouts are in seconds (None: wait forever). acquire()/wait() return False
when the timeout expires; Queue.get/put and parallel raise TimeoutError.
"""

import time

import stackless
import _engine

__all__ = [
    "new", "Sleep", "Yield", "BeNice", "channel", "Semaphore", "CriticalSection", "Event",
    "Condition", "Queue", "parallel",
]


def new(func, *args, **kwargs):
    """Starts func(*args, **kwargs) in a new tasklet (runnable, not run yet)."""
    return stackless.tasklet(func)(*args, **kwargs)


def Sleep(seconds):
    """Parks the calling tasklet for `seconds` on a timer heap; others run meanwhile."""
    _engine.sleep(seconds)


def Yield():
    """Lets the others run before this tasklet continues.

    Inside the game loop it waits for phase 3 of the next frame (so a tasklet
    that keeps yielding runs once per frame); outside, every other runnable
    tasklet runs once (stackless.schedule()).
    """
    _engine.be_nice()


BeNice = Yield


def channel():
    """A channel whose sends and receives only make the partner runnable (no switch)."""
    ch = stackless.channel()
    ch.preference = 0
    return ch


Semaphore = _engine.Semaphore
CriticalSection = _engine.RLock
Event = _engine.Event


class Condition:
    """A condition variable over a CriticalSection (re-entrant), FIFO wake-up."""

    def __init__(self, lock=None):
        self._lock = lock if lock is not None else CriticalSection()
        self._waiters = _engine.WaitQueue()

    def acquire(self, blocking=True, timeout=None):
        return self._lock.acquire(blocking, timeout)

    def release(self):
        self._lock.release()

    def __enter__(self):
        self._lock.acquire()
        return self

    def __exit__(self, *exc):
        self._lock.release()
        return False

    def wait(self, timeout=None):
        """Releases the lock, waits for notify (or timeout), re-acquires; True if notified."""
        return self._waiters.wait(self._lock, timeout)

    def wait_for(self, predicate, timeout=None):
        deadline = None if timeout is None else time.monotonic() + timeout
        result = predicate()
        while not result:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self.wait(remaining)
            result = predicate()
        return result

    def notify(self, n=1):
        self._require_owned("notify")
        return self._waiters.notify(n)

    def notify_all(self):
        self._require_owned("notify_all")
        return self._waiters.notify_all()

    def _require_owned(self, what):
        if not self._lock.owned:
            raise RuntimeError(f"cannot {what}() a condition whose lock this tasklet does not hold")


class Queue:
    """A FIFO queue between tasklets (of any thread); maxsize <= 0 means unbounded."""

    def __init__(self, maxsize=0):
        import collections
        self.maxsize = maxsize
        self._items = collections.deque()
        self._lock = CriticalSection()
        self._not_empty = Condition(self._lock)
        self._not_full = Condition(self._lock)

    def qsize(self):
        with self._lock:
            return len(self._items)

    def empty(self):
        return self.qsize() == 0

    def full(self):
        with self._lock:
            return 0 < self.maxsize <= len(self._items)

    def put(self, item, block=True, timeout=None):
        with self._not_full:
            if 0 < self.maxsize and not self._not_full.wait_for(
                    lambda: len(self._items) < self.maxsize, self._wait_time(block, timeout)):
                raise TimeoutError("Queue.put: the queue stayed full")
            self._items.append(item)
            self._not_empty.notify()

    def get(self, block=True, timeout=None):
        with self._not_empty:
            if not self._not_empty.wait_for(lambda: self._items, self._wait_time(block, timeout)):
                raise TimeoutError("Queue.get: the queue stayed empty")
            item = self._items.popleft()
            self._not_full.notify()
            return item

    def put_nowait(self, item):
        self.put(item, block=False)

    def get_nowait(self):
        return self.get(block=False)

    @staticmethod
    def _wait_time(block, timeout):
        return 0 if not block else timeout


def parallel(callables, timeout=None):
    """Runs each callable in its own tasklet and waits for all of them.

    Returns their results in order. If any raises, the others are killed and
    the first error is re-raised; on timeout they are killed and TimeoutError
    is raised.
    """
    callables = list(callables)
    results = [None] * len(callables)
    errors = []
    done = Event()
    count = [len(callables)]

    def run(index, func):
        try:
            results[index] = func()
        except TaskletExit:
            pass  # killed by parallel itself (another callable failed, or the timeout)
        except BaseException as error:
            errors.append(error)
            done.set()
        finally:
            count[0] -= 1
            if count[0] == 0:
                done.set()

    tasklets = [new(run, i, f) for i, f in enumerate(callables)]
    if not tasklets:
        return results
    try:
        if not done.wait(timeout):
            raise TimeoutError(f"parallel: {count[0]} of {len(tasklets)} callables did not finish")
        if errors:
            raise errors[0]
        return results
    finally:
        for t in tasklets:
            if t.alive:
                t.kill()
