"""A tasklet that runs past the end of its C stack stops the process, loudly.

Tasklet stacks sit next to each other in the stack pool, so C code that uses
more stack than a tasklet has (the recursion cap bounds Python recursion, not
what a C extension does) writes over the block below. The engine checks a
canary word at the low end of the stack whenever a tasklet switches out and
aborts with the tasklet named; with guard pages (SHARD_STACK_GUARD_PAGES) the
first write past the end faults instead.

The overflow is real: through ctypes, a C function is called with a structure
passed by value that is larger than the stack, which libffi copies onto the
stack. Each case runs in a child `shard python` with small stacks.
"""

import os
import signal
import subprocess
import sys
import unittest

import _engine
from support import StacklessTestCase, SuspectedDeadlock

CHILD_TIMEOUT_S = 30
STACK_KB = 256

CHILD = r"""
import ctypes, sys
import stackless

size = int(sys.argv[1])

class Big(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_ubyte * size)]

big = Big()
ctypes.memset(ctypes.addressof(big), 0xAA, size)
labs = ctypes.CDLL(None).labs
labs.argtypes = [Big]  # labs ignores it; libffi copies it onto the stack anyway

def call_with_big_argument():
    labs(big)
    stackless.schedule()  # a switch-out: the canary is checked

# Two tasklets first, so the one that overflows does not get the slab's lowest
# block: below that there may be no mapping, and the overflow would fault.
for _ in range(2):
    stackless.tasklet(stackless.schedule)()
stackless.tasklet(call_with_big_argument)().name = "overflower"
stackless.run()
print("survived")
"""


def run_child(argument_bytes):
    env = dict(os.environ, SHARD_TASKLET_STACK_KB=str(STACK_KB))
    # Under ASan the fault must kill the child as it would without it.
    env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":handle_segv=0"
    try:
        return subprocess.run([sys.executable, "-c", CHILD, str(argument_bytes)],
                              env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SuspectedDeadlock("suspected deadlock: the stack overflow child did not finish "
                                "within %d s" % CHILD_TIMEOUT_S) from None


def describe(result):
    return "child exit status %d (negative = killed by that signal); stderr tail:\n%s" % (
        result.returncode, "\n".join(result.stderr.splitlines()[-8:]))


class StackOverflowTest(StacklessTestCase):
    deadline_s = 60.0

    def test_call_that_fits_in_the_stack_leaves_the_canary_alone(self):
        result = run_child(64 << 10)
        self.assertEqual((result.returncode, result.stdout), (0, "survived\n"), describe(result))

    @unittest.skipIf(_engine.stack_guard_pages()["enabled"], "guard pages stop the overflow first")
    def test_overflow_aborts_naming_the_tasklet_and_its_stack(self):
        result = run_child((STACK_KB + 64) << 10)
        self.assertEqual(result.returncode, -signal.SIGABRT, describe(result))
        self.assertRegex(result.stderr,
                         r"shard: fatal: C stack overflow in tasklet 'overflower' "
                         r"\(<stackless.tasklet object at 0x[0-9a-f]+>\): the canary word at the low end "
                         r"of its stack \(0x[0-9a-f]+, stack 0x[0-9a-f]+\.\.0x[0-9a-f]+, %d KiB\) "
                         r"reads 0xaaaaaaaaaaaaaaaa" % (STACK_KB - 2))
        self.assertNotIn("survived", result.stdout)

    @unittest.skipUnless(_engine.stack_guard_pages()["enabled"], "built without SHARD_STACK_GUARD_PAGES")
    def test_overflow_faults_at_the_guard_page(self):
        result = run_child((STACK_KB + 64) << 10)
        self.assertEqual(result.returncode, -signal.SIGSEGV, describe(result))
        self.assertNotIn("survived", result.stdout)


if __name__ == "__main__":
    unittest.main()
