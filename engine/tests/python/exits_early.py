"""Not a test of the engine: a unittest module that leaves in the middle of its
run with status 0. ctest must count it as failed (cmake/ShardTest.cmake, test
harness_rejects_early_exit_unittest)."""

import os
import unittest


class ExitsEarly(unittest.TestCase):
    def test_leaves_with_status_zero_before_the_summary(self):
        os._exit(0)
