"""swarm_stats.Histogram read back from the raw form the native bots write
(tools/bots, swarm.py --native): the same buckets, counts, errors and
percentiles as the samples added in Python."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "engine", "tests", "python"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "client"))

import support  # noqa: E402
import swarm_stats  # noqa: E402
from support import StacklessTestCase  # noqa: E402

setUpModule, tearDownModule = support.setUpModule, support.tearDownModule


def raw_of(h):
    """The raw form shard-bots writes (latency_histogram.cpp), of a Python histogram."""
    return {"buckets": {str(i): n for i, n in h.buckets.items()}, "count": h.count, "errors": h.errors,
            "total_s": h.total, "max_s": h.max, "error_samples": dict(h.error_samples)}


class FromRawTest(StacklessTestCase):
    def test_a_raw_histogram_reads_back_as_the_same_figures(self):
        h = swarm_stats.Histogram()
        for s in (0.001, 0.002, 0.003, 0.010, 0.5):
            h.add(s)
        h.error("CallTimeout: ping.ping: no answer within 30 s")
        back = swarm_stats.Histogram.from_raw(raw_of(h))
        self.assertEqual(back.to_json(), h.to_json())

    def test_merged_raw_histograms_add_up_and_keep_ten_error_kinds(self):
        a, b = swarm_stats.Histogram(), swarm_stats.Histogram()
        for i in range(100):
            a.add(0.001 * (i + 1))
            b.add(0.002 * (i + 1))
        for i in range(8):
            a.error("a%d" % i)
            b.error("b%d" % i)
        merged = swarm_stats.Histogram.from_raw(raw_of(a))
        merged.merge_raw(raw_of(b))
        self.assertEqual((merged.count, merged.errors), (200, 16))
        self.assertEqual(merged.max, 0.2)
        self.assertEqual(len(merged.error_samples), 10)
        every = swarm_stats.Histogram()
        for i in range(100):
            every.add(0.001 * (i + 1))
            every.add(0.002 * (i + 1))
        for p in (50, 90, 99, 99.9):
            self.assertEqual(merged.percentile(p), every.percentile(p))

    def test_an_empty_raw_histogram_has_no_percentiles(self):
        h = swarm_stats.Histogram.from_raw({"buckets": {}, "count": 0, "errors": 2, "total_s": 0, "max_s": 0,
                                            "error_samples": {"x": 2}})
        self.assertIsNone(h.percentile(50))
        self.assertEqual(h.to_json()["errors"], 2)


if __name__ == "__main__":
    unittest.main()
