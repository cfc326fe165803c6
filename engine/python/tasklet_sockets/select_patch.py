"""select.select, select.poll and the selectors that wait on them, made
tasklet-aware: on the tasklets' thread a call first asks the kernel without
waiting (the stock call with timeout 0, which also checks the arguments);
when nothing is ready it waits for the first of the descriptors on the IO
threads (only this tasklet waits) and asks again. Elsewhere: the stock calls.
selectors.EpollSelector (DefaultSelector) waits on its epoll descriptor, which
is readable when one of its registered descriptors is ready. select.epoll
objects used directly are not patched.
"""

import math
import select as _select_module
import time

from . import waiting

_stock_select = _select_module.select
_stock_poll = _select_module.poll
_monotonic = time.monotonic
_POLL_BITS = waiting.POLLIN | waiting.POLLOUT | waiting.POLLPRI


def _fd(obj):
    return obj if isinstance(obj, int) else obj.fileno()


def select(rlist, wlist, xlist, timeout=None):
    if not waiting.cooperative():
        return _stock_select(rlist, wlist, xlist, timeout)
    if timeout is not None:
        timeout = waiting.check_seconds(timeout, "timeout must be a float or None")
        if timeout < 0:
            raise ValueError("timeout must be non-negative")
    rlist, wlist, xlist = list(rlist), list(wlist), list(xlist)  # iterables may be read once only
    ready = _stock_select(rlist, wlist, xlist, 0)
    if ready[0] or ready[1] or ready[2] or timeout == 0:
        return ready
    interests = ([(_fd(o), waiting.POLLIN) for o in rlist] + [(_fd(o), waiting.POLLOUT) for o in wlist]
                 + [(_fd(o), waiting.POLLPRI) for o in xlist])
    return _wait_then(interests, waiting.deadline_after(timeout),
                      lambda: _stock_select(rlist, wlist, xlist, 0), ([], [], []))


select.__doc__ = _stock_select.__doc__


def _wait_then(interests, deadline, ask, nothing):
    """Waits for the first of `interests` (none: sleeps until the deadline), then
    ask(); again after a spurious wake; `nothing` at the deadline."""
    while True:
        if interests:
            if not waiting.wait_any(interests, deadline):
                return nothing
        else:
            while deadline is None:  # nothing to wait for, forever: as the stock call
                waiting.sleep(86400.0)
            waiting.sleep(waiting.remaining(deadline))
            return nothing
        ready = ask()
        if (any(ready) if isinstance(ready, tuple) else ready):
            return ready


class poll:
    """select.poll() whose poll() blocks only the calling tasklet."""

    __slots__ = ("_poll", "_events")

    def __init__(self):
        self._poll = _stock_poll()
        self._events = {}

    def register(self, fd, eventmask=waiting.POLLIN | waiting.POLLPRI | waiting.POLLOUT):
        self._poll.register(fd, eventmask)
        self._events[_fd(fd)] = eventmask

    def modify(self, fd, eventmask):
        self._poll.modify(fd, eventmask)
        self._events[_fd(fd)] = eventmask

    def unregister(self, fd):
        self._poll.unregister(fd)
        del self._events[_fd(fd)]

    def poll(self, timeout=None):
        if not waiting.cooperative():
            return self._poll.poll(timeout)
        if timeout is not None:
            if not isinstance(timeout, (int, float)):
                raise TypeError("timeout must be an integer or None")
            if timeout < 0:
                timeout = None  # poll(): a negative timeout waits forever
        ready = self._poll.poll(0)
        if ready or timeout == 0:
            return ready
        interests = [(fd, mask & _POLL_BITS) for fd, mask in self._events.items() if mask & _POLL_BITS]
        seconds = None if timeout is None else math.ceil(timeout) / 1e3
        return _wait_then(interests, waiting.deadline_after(seconds), lambda: self._poll.poll(0), [])


def _epoll_select(stock):
    def select(self, timeout=None):
        if not waiting.cooperative() or (timeout is not None and timeout <= 0):
            return stock(self, timeout)
        ready = stock(self, 0)
        if ready:
            return ready
        interests = [(self._selector.fileno(), waiting.POLLIN)]
        return _wait_then(interests, waiting.deadline_after(timeout), lambda: stock(self, 0), [])

    select.__doc__ = stock.__doc__
    return select


def install_select(module):
    """Patches the select module (just imported, or already there)."""
    module.select = select
    module.poll = poll


def install_selectors(module):
    """Patches the selectors module's classes in place: code that picked one
    at import time (socketserver's PollSelector) gets the patched one too."""
    module.PollSelector._selector_cls = poll
    module.SelectSelector._select = staticmethod(select)
    if hasattr(module, "EpollSelector"):
        module.EpollSelector.select = _epoll_select(module.EpollSelector.select)
