"""Where a blocking call waits: on the engine's IO threads when it runs on the
thread of the engine's tasklets (only the calling tasklet waits), in poll()
otherwise (the OS thread blocks, as a stock socket would).

Everything in tasklet_sockets asks `cooperative()` first: false on any other
OS thread (threading.Thread, call_in_thread workers), in the game loop's own
tasklet (tick hooks), after a fork, and when the switch is off
(set_enabled(False)); then the stock behaviour applies.
"""

import _engine
import _thread
import math
import operator
import select
import time

import stackless

# The stock poll, taken before tasklet_sockets patches the select module.
_os_poll = select.poll
_monotonic = time.monotonic
_loop_running = _engine.loop_running
_getcurrent = stackless.getcurrent
_stock_sleep = time.sleep

POLLIN = select.POLLIN
POLLOUT = select.POLLOUT
POLLPRI = select.POLLPRI

_tasklet_thread = None  # the ident of the thread that runs the engine's tasklets
_enabled = False


def cooperative():
    """True when a blocking call here should block only the calling tasklet:
    on the tasklets' thread, but not in the main tasklet while the game loop
    runs on it (a tick hook): the loop cannot park, so there the thread blocks."""
    return (_enabled and _thread.get_ident() == _tasklet_thread
            and not (_loop_running() and _getcurrent().is_main))


def set_state(enabled, thread_ident):
    global _enabled, _tasklet_thread
    _enabled = enabled
    _tasklet_thread = thread_ident


def enabled():
    return _enabled


def deadline_after(timeout):
    """The monotonic deadline of a timeout in seconds (None: none)."""
    return None if timeout is None else _monotonic() + timeout


def remaining(deadline):
    return None if deadline is None else max(0.0, deadline - _monotonic())


def wait(fd, events, deadline):
    """Waits until fd is ready for one of events (POLLIN/POLLOUT/POLLPRI) or
    the deadline passes (False). A closed descriptor (-1) is "ready": the
    caller's next operation raises its EBADF."""
    if fd < 0:
        return True
    if cooperative():
        return _engine.io_wait(fd, events, remaining(deadline))
    return wait_any_os(((fd, events),), deadline)


def ready_now(fd, events):
    """Whether fd is ready for one of events right now (poll() with timeout 0)."""
    poller = _os_poll()
    poller.register(fd, events)
    return bool(poller.poll(0))


def wait_any(interests, deadline):
    """wait() for the first of several (fd, events)."""
    if cooperative():
        return _engine.io_wait_any(interests, remaining(deadline))
    return wait_any_os(interests, deadline)


def wait_any_os(interests, deadline):
    poller = _os_poll()
    for fd, events in interests:
        poller.register(fd, events)
    while True:
        left = remaining(deadline)
        if left is not None and left <= 0:
            return False
        if poller.poll(None if left is None else math.ceil(left * 1e3)):
            return True


def check_seconds(value, type_message=None):
    """_PyTime_FromSecondsObject's checks, as time.sleep and select.select
    apply them: a float, or an int-like (TypeError, with `type_message` when
    given), not NaN, within the nanosecond clock's range."""
    if isinstance(value, float):
        if value != value:
            raise ValueError("Invalid value NaN (not a number)")
    elif type_message is None:
        value = operator.index(value)
    else:
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(type_message) from None
    if abs(value) * 1e9 >= 2**63:
        raise OverflowError("timestamp too large to convert to C _PyTime_t")
    return value


def sleep(secs):
    """time.sleep: inside the engine's thread, only this tasklet sleeps
    (uthread.Sleep); the argument checks and messages are time.sleep's."""
    if not cooperative():
        return _stock_sleep(secs)
    secs = check_seconds(secs)
    if secs < 0:
        raise ValueError("sleep length must be non-negative")
    _engine.sleep(secs)
