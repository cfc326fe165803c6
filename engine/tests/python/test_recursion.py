"""Deep recursion inside a tasklet raises RecursionError and never crashes.

A tasklet runs on its own fixed-size C stack, so the engine caps the depth a
tasklet may reach even when sys.setrecursionlimit() is raised. Each pattern
runs in a fresh tasklet that catches RecursionError and reports back through
a channel. The limit tests run each pattern in a separate `shard python`
process, so a crash (SIGSEGV) fails that one test instead of killing the
whole module.
"""

import os
import subprocess
import sys
import unittest

import stackless
from support import StacklessTestCase, SuspectedDeadlock
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)

CHILD_TIMEOUT_S = 30

HIGH_LIMIT = 100000


def plain_recursion(n=0):
    return plain_recursion(n + 1)


def sorted_key_recursion(x=0):
    # Python -> sorted() (C) -> key function (Python) -> sorted() ...
    return sorted([x, x + 1], key=sorted_key_recursion)


class AttributeRecursion:
    def __getattr__(self, name):
        # __getattr__ is called from C slot code for each missing attribute.
        return getattr(self, name)


def getattr_recursion():
    return AttributeRecursion().missing


def map_recursion(x=0):
    return list(map(map_recursion, [x]))


def run_pattern_in_tasklet(pattern, recursion_limit=None):
    """Run pattern() in a tasklet; return what it reported via a channel."""
    reports = stackless.channel()
    reports.preference = 1

    def body():
        old_limit = sys.getrecursionlimit()
        try:
            if recursion_limit is not None:
                sys.setrecursionlimit(recursion_limit)
            pattern()
        except RecursionError:
            outcome = "RecursionError"
        except BaseException as e:
            outcome = "other: %r" % (e,)
        else:
            outcome = "returned"
        finally:
            sys.setrecursionlimit(old_limit)
        reports.send(outcome)

    stackless.tasklet(body)()
    return reports.receive()


def run_pattern_isolated(pattern_name, recursion_limit=None):
    """Run a pattern in a tasklet of a fresh `shard python` process.

    Isolation keeps one crashing pattern from taking the other tests down
    with it; the child prints what its tasklet reported through the channel.
    """
    code = ("import test_recursion as t; "
            "print(t.run_pattern_in_tasklet(t.%s, %r))" % (pattern_name, recursion_limit))
    try:
        return subprocess.run([sys.executable, "-X", "faulthandler", "-c", code],
                              cwd=os.path.dirname(os.path.abspath(__file__)),
                              capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SuspectedDeadlock("suspected deadlock: recursion pattern %s did not finish "
                                "within %d s" % (pattern_name, CHILD_TIMEOUT_S)) from None


class RecursionLimitTest(StacklessTestCase):
    deadline_s = 60.0

    def assert_recursion_error(self, pattern_name, recursion_limit=None):
        result = run_pattern_isolated(pattern_name, recursion_limit)
        self.assertEqual(
            (result.returncode, result.stdout), (0, "RecursionError\n"),
            "child exit status %d (negative = killed by that signal); stderr tail:\n%s"
            % (result.returncode, "\n".join(result.stderr.splitlines()[-8:])))

    def test_plain_recursion_in_tasklet_raises_recursion_error(self):
        self.assert_recursion_error("plain_recursion")

    def test_recursion_through_sorted_key_in_tasklet_raises_recursion_error(self):
        self.assert_recursion_error("sorted_key_recursion")

    def test_recursion_through_getattr_in_tasklet_raises_recursion_error(self):
        self.assert_recursion_error("getattr_recursion")

    def test_recursion_through_map_in_tasklet_raises_recursion_error(self):
        self.assert_recursion_error("map_recursion")

    def test_plain_recursion_with_raised_limit_raises_recursion_error(self):
        self.assert_recursion_error("plain_recursion", HIGH_LIMIT)

    def test_sorted_key_recursion_with_raised_limit_raises_recursion_error(self):
        self.assert_recursion_error("sorted_key_recursion", HIGH_LIMIT)

    def test_getattr_recursion_with_raised_limit_raises_recursion_error(self):
        self.assert_recursion_error("getattr_recursion", HIGH_LIMIT)

    def test_map_recursion_with_raised_limit_raises_recursion_error(self):
        self.assert_recursion_error("map_recursion", HIGH_LIMIT)


class RecoveryTest(StacklessTestCase):

    def test_tasklet_still_works_after_recovering_from_recursion_error(self):
        reports = stackless.channel()
        reports.preference = 1

        def body():
            try:
                map_recursion()
            except RecursionError:
                pass
            reports.send(sum(range(10)))

        stackless.tasklet(body)()
        self.assertEqual(reports.receive(), 45)

    def test_recursion_error_in_one_tasklet_leaves_others_running(self):
        c = stackless.channel()
        bystander_log = []

        def bystander():
            bystander_log.append(c.receive())

        stackless.tasklet(bystander)().run()
        self.assertEqual(run_pattern_in_tasklet(plain_recursion), "RecursionError")
        c.send("still alive")
        self.assertEqual(bystander_log, ["still alive"])


class ModerateDepthTest(StacklessTestCase):

    def test_tasklet_can_recurse_500_levels_of_python(self):
        def depth(n):
            return 0 if n == 0 else 1 + depth(n - 1)

        reports = stackless.channel()
        reports.preference = 1
        stackless.tasklet(lambda: reports.send(depth(500)))()
        self.assertEqual(reports.receive(), 500)

    def test_tasklet_can_recurse_100_levels_through_c_calls(self):
        def via_map(n):
            return 0 if n == 0 else 1 + list(map(via_map, [n - 1]))[0]

        reports = stackless.channel()
        reports.preference = 1
        stackless.tasklet(lambda: reports.send(via_map(100)))()
        self.assertEqual(reports.receive(), 100)

    def test_tasklet_can_switch_while_deep_in_recursion(self):
        c = stackless.channel()

        def deep_then_receive(n):
            if n == 0:
                return c.receive()
            return list(map(deep_then_receive, [n - 1]))[0]

        results = []
        stackless.tasklet(lambda: results.append(deep_then_receive(200)))()
        stackless.run()
        c.send("bottom")
        self.assertEqual(results, ["bottom"])


if __name__ == "__main__":
    unittest.main()
