"""Shared helpers for the stackless test suite.

Every test module imports StacklessTestCase from here. It gives each test:

* a deadline: a test that has not finished after `deadline_s` seconds is
  reported as a "suspected deadlock" (tracebacks of all threads are dumped),
  and the process is killed a few seconds later if it is still stuck;
* a clean scheduler: leftover tasklets are killed in tearDown and the test
  fails if the runnable queue does not shrink back to the main tasklet;
* a leak check per test module (`from support import setUpModule,
  tearDownModule` in every test module): after the module, live tasklets,
  schedulers, thread states, POSIX timers and stack blocks must be back to
  their counts before it (_engine.resource_counts()).

Why the deadline lives in a child process and not in a Python thread: the
engine treats "another Python thread exists" as a reason to *wait* instead of
raising the deadlock RuntimeError, so a watchdog thread would change the very
behaviour several tests check. A tiny `/bin/sh` child sleeps, prints the
message on our stderr, sends SIGUSR2 (faulthandler dumps every thread's stack
from a C handler, which works even when the GIL is held forever, and a Python
handler raises SuspectedDeadlock if the interpreter still runs bytecode), then
SIGKILLs us after a grace period.
"""

import contextlib
import faulthandler
import gc
import os
import select
import signal
import subprocess
import sys
import threading
import time
import unittest

import _engine
import stackless

DEFAULT_DEADLINE_S = 10.0
KILL_GRACE_S = 5.0


class SuspectedDeadlock(AssertionError):
    """Raised in the main thread when a test outlives its deadline."""


_current_deadline_message = [None]


def _on_deadline_signal(signum, frame):
    raise SuspectedDeadlock(_current_deadline_message[0] or "suspected deadlock")


# Order matters: faulthandler chains to the handler installed before it.
signal.signal(signal.SIGUSR2, _on_deadline_signal)
faulthandler.register(signal.SIGUSR2, all_threads=True, chain=True)

# Arguments: $1 deadline in ticks of 0.1 s, $2 message, $3 pid to watch,
# $4 grace in ticks. The watchdog quits as soon as the watched process is
# gone, so a test process that crashed is not followed by a stale message
# (and no orphan keeps the output pipe open).
_WATCHDOG_SCRIPT = (
    'i=0; while [ "$i" -lt "$1" ]; do '
    'kill -0 "$3" 2>/dev/null || exit 0; sleep 0.1; i=$((i+1)); done; '
    'printf "\\n%s\\n" "$2" >&2; '
    'kill -USR2 "$3" 2>/dev/null; '
    'i=0; while [ "$i" -lt "$4" ]; do '
    'kill -0 "$3" 2>/dev/null || exit 0; sleep 0.1; i=$((i+1)); done; '
    'printf "%s (process killed)\\n" "$2" >&2; '
    'kill -KILL "$3" 2>/dev/null'
)


@contextlib.contextmanager
def deadline(seconds=DEFAULT_DEADLINE_S, what="test"):
    """Fail as a suspected deadlock if the block runs longer than `seconds`."""
    message = "suspected deadlock: %s did not finish within %g s" % (what, seconds)
    watchdog = subprocess.Popen(
        ["/bin/sh", "-c", _WATCHDOG_SCRIPT, "deadline",
         str(int(seconds * 10)), message, str(os.getpid()), str(int(KILL_GRACE_S * 10))],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        start_new_session=True)
    previous = _current_deadline_message[0]
    _current_deadline_message[0] = message
    try:
        yield
    finally:
        _current_deadline_message[0] = previous
        # The watchdog leads its own process group (start_new_session), so
        # this ends the shell and its `sleep`, and nothing else.
        try:
            os.killpg(watchdog.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        watchdog.wait()


def with_deadline(seconds):
    """Decorator form of deadline() for a single test method."""
    def decorate(func):
        def wrapper(self, *args, **kwargs):
            with deadline(seconds, self.id()):
                return func(self, *args, **kwargs)
        wrapper.__name__ = func.__name__
        wrapper.__doc__ = func.__doc__
        return wrapper
    return decorate


def wait_until(predicate, timeout=5.0, what="condition"):
    """Poll `predicate` (sleeping, so other OS threads run) until it is true."""
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise SuspectedDeadlock(
                "suspected deadlock: %s not reached within %g s" % (what, timeout))
        time.sleep(0.001)


def join_or_fail(thread, timeout=5.0):
    thread.join(timeout)
    if thread.is_alive():
        raise SuspectedDeadlock(
            "suspected deadlock: thread %s still alive after %g s" % (thread.name, timeout))


def busy_for(seconds):
    """Run Python bytecode for `seconds` without ever switching tasklets."""
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def _runnable_ring():
    found = []
    main = stackless.getmain()
    t = main.next
    guard = 0
    while t is not None and t is not main and guard < 1_000_000:
        found.append(t)
        t = t.next
        guard += 1
    return found


def _alive_tasklets_of_this_thread():
    me = threading.get_ident()
    result = []
    for obj in gc.get_objects():
        if isinstance(obj, stackless.tasklet):
            try:
                if obj.alive and not obj.is_main and obj.thread_id == me \
                        and obj is not stackless.getcurrent():
                    result.append(obj)
            except Exception:
                pass
    return result


def kill_leftover_tasklets():
    """Kill every other alive tasklet of this thread; return how many there were."""
    total = 0
    for _ in range(3):
        leftovers = _runnable_ring()
        seen = set(map(id, leftovers))
        leftovers += [t for t in _alive_tasklets_of_this_thread() if id(t) not in seen]
        if not leftovers:
            break
        total += len(leftovers)
        for t in leftovers:
            try:
                if t.alive:
                    t.kill()
            except BaseException:
                pass
    return total


class StacklessTestCase(unittest.TestCase):
    """Base class: a per-test deadline and a clean scheduler before and after."""

    deadline_s = DEFAULT_DEADLINE_S

    def setUp(self):
        guard = deadline(self.deadline_s, self.id())
        guard.__enter__()
        self.addCleanup(guard.__exit__, None, None, None)
        if stackless.getruncount() != 1:
            kill_leftover_tasklets()
        self.assertIs(stackless.getcurrent(), stackless.getmain(),
                      "tests must start on the main tasklet")

    def tearDown(self):
        main = stackless.getmain()
        if stackless.getcurrent() is main:
            main.block_trap = False
            main.set_atomic(False)
        kill_leftover_tasklets()
        self.assertEqual(stackless.getruncount(), 1,
                         "scheduler not clean after the test: runcount %d"
                         % stackless.getruncount())


def run_in_tasklet(func, *args, **kwargs):
    """Run func in a fresh tasklet; return ("ok", value) or ("raised", exc)."""
    results = stackless.channel()
    results.preference = 1  # the reporting tasklet must not block on the send

    def body():
        try:
            value = func(*args, **kwargs)
        except BaseException as exc:  # report everything, TaskletExit included
            results.send(("raised", exc))
        else:
            results.send(("ok", value))

    stackless.tasklet(body)()
    return results.receive()


# ---------------------------------------------------------------- threads and child processes

def start_thread(target, *args):
    """Starts a daemon thread running target(*args)."""
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def result_in_new_thread(func):
    """Runs func in a new OS thread (its own scheduler); returns its result or raises its error."""
    box = {}

    def target():
        try:
            box["value"] = func()
        except BaseException as e:
            box["error"] = e

    join_or_fail(start_thread(target))
    if "error" in box:
        raise box["error"]
    return box["value"]


# The shard binary itself (`shard run ...`). sys.executable is its python-style
# entry beside it (shard-python), which takes python3's command line.
SHARD_BINARY = os.path.join(os.path.dirname(sys.executable), "shard")

CHILD_TIMEOUT_S = 30


def run_child(command, **kwargs):
    """Runs a child process to completion (text output), failing as a suspected deadlock if it hangs."""
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, **kwargs)
    except subprocess.TimeoutExpired:
        raise SuspectedDeadlock("suspected deadlock: %r did not exit within %d s"
                                % (command, CHILD_TIMEOUT_S)) from None


def read_until(proc, marker, timeout=15.0):
    """Reads the child's stdout (binary pipe) until `marker` appears."""
    data = b""
    end = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    while marker not in data:
        left = end - time.monotonic()
        if left <= 0:
            raise SuspectedDeadlock("suspected deadlock: child never wrote %r (got %r)" % (marker, data))
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            data += chunk
    return data


# ---------------------------------------------------------------- leak check per test module

LEAK_CHECKED = ("tasklets", "schedulers", "thread_states", "timers", "stack_blocks")
# Threads a test joined may still be tearing their thread state down, and
# requests given up on come back from their workers: wait that long for the
# counts to settle before calling anything a leak.
LEAK_SETTLE_S = 5.0

_module_start_counts = [None]
# Resources a test leaves behind on purpose (and says why), by name.
_expected_leaks = {}


def expect_leaked(resource, count, why):
    """Tells the leak check that this module leaves `count` more `resource` behind: `why`."""
    assert resource in LEAK_CHECKED and why, (resource, why)
    _expected_leaks[resource] = _expected_leaks.get(resource, 0) + count


def _settled_counts():
    """The counts once garbage is collected (tasklets in cycles are killed by it)."""
    gc.collect()
    gc.collect()  # a finalizer of the first pass may free more
    return _engine.resource_counts()


def _leaks(start, now):
    return {name: (start[name], now[name]) for name in LEAK_CHECKED if now[name] > start[name]}


def setUpModule():
    # The main thread's watchdog timer is made at its first timed run and kept
    # for the thread's life: made here, so a module that first needs it does
    # not count it as a leak.
    stackless.tasklet(lambda: None)()
    stackless.run(timeout=10**9)
    _module_start_counts[0] = _settled_counts()


def tearDownModule():
    start = _module_start_counts[0]
    if start is None:
        return
    _module_start_counts[0] = None
    start = {name: start[name] + _expected_leaks.get(name, 0) for name in start}
    _expected_leaks.clear()
    end = time.monotonic() + LEAK_SETTLE_S
    while True:
        now = _settled_counts()
        leaks = _leaks(start, now)
        idle = now["requests_in_flight"] == 0
        if (not leaks and idle) or time.monotonic() > end:
            break
        # Parks the main tasklet: its idle wait dispatches what workers hand back.
        _engine.sleep(0.01)
    if leaks or not idle:
        details = ", ".join("%s %d -> %d" % (name, before, after) for name, (before, after) in sorted(leaks.items()))
        raise AssertionError("resources left behind by the test module: %s (requests in flight: %d; before: %s; after: %s)"
                             % (details or "none", now["requests_in_flight"], start, now))

