"""The test harness's own checks: the per-module leak check of support.py.

A check that cannot fail proves nothing: a module that leaves a blocked
tasklet behind must fail its tearDownModule, naming the counts, and the same
module without the leak must pass.
"""

import os
import re
import sys
import tempfile
import textwrap
import unittest

from support import StacklessTestCase, run_child
from support import setUpModule, tearDownModule  # noqa: F401 (the leak check around this module)

MODULE = textwrap.dedent("""
    import unittest
    import stackless
    from support import setUpModule, tearDownModule

    kept = []

    class OneTest(unittest.TestCase):
        def test_a_tasklet_blocks_on_a_channel(self):
            channel = stackless.channel()
            blocked = stackless.tasklet(channel.receive)()
            blocked.run()
            if LEAK:
                kept.append((channel, blocked))  # alive, blocked, after the module
            else:
                blocked.kill()
""")


class LeakCheckTest(StacklessTestCase):

    def run_module(self, leak):
        with tempfile.TemporaryDirectory() as directory:
            with open(os.path.join(directory, "module_under_check.py"), "w") as f:
                f.write("LEAK = %r\n" % leak + MODULE)
            path = os.pathsep.join([os.path.dirname(os.path.abspath(__file__)), os.environ.get("PYTHONPATH", "")])
            return run_child([sys.executable, "-m", "unittest", "module_under_check"], cwd=directory,
                             env=dict(os.environ, PYTHONPATH=path))

    def test_a_module_that_leaves_a_blocked_tasklet_fails_with_the_counts(self):
        result = self.run_module(leak=True)
        self.assertNotEqual(result.returncode, 0, result.stderr)
        self.assertIn("ERROR: tearDownModule (module_under_check)", result.stderr)
        found = re.search(r"resources left behind by the test module: stack_blocks (\d+) -> (\d+), "
                          r"tasklets (\d+) -> (\d+) \(", result.stderr)
        self.assertIsNotNone(found, result.stderr)
        blocks_before, blocks_after, tasklets_before, tasklets_after = map(int, found.groups())
        self.assertEqual((blocks_after - blocks_before, tasklets_after - tasklets_before), (1, 1))

    def test_the_same_module_without_the_leak_passes(self):
        result = self.run_module(leak=False)
        self.assertEqual(result.returncode, 0, result.stderr)


if __name__ == "__main__":
    unittest.main()
