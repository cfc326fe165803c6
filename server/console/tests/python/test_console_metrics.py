"""/metrics: Prometheus' text format, read by python3-prometheus-client's own
parser; served on its own port without a session; off by default."""

import http.client
import unittest

from prometheus_client.parser import text_string_to_metric_families

from console_support import Client, Node

import support  # noqa: E402


def setUpModule():
    global node
    support.setUpModule()
    node = Node()


def tearDownModule():
    node.stop()
    support.tearDownModule()


def scrape(port, path="/metrics"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type"), response.read().decode()
    finally:
        connection.close()


class Metrics(unittest.TestCase):

    def families(self):
        status, content_type, text = scrape(node.metrics_port)
        self.assertEqual(status, 200)
        self.assertTrue(content_type.startswith("text/plain; version=0.0.4"))
        return {f.name: f for f in text_string_to_metric_families(text)}

    def test_the_parser_reads_every_family_the_issue_asks_for(self):
        families = self.families()
        for name, kind in (("shard_frame_seconds", "histogram"), ("shard_frame_overruns", "counter"),
                           ("shard_tasklets_alive", "gauge"), ("shard_dispatch_latency_seconds", "summary"),
                           ("shard_worker_threads", "gauge"), ("shard_io_threads", "gauge"),
                           ("shard_runnable_tasklets", "gauge"), ("shard_io_waits", "gauge"),
                           ("shard_net_connections", "gauge"), ("shard_net_listeners", "gauge"),
                           ("shard_console_connections", "gauge"), ("shard_console_bytes_in", "counter"),
                           ("shard_console_bytes_out", "counter")):
            with self.subTest(name=name):
                self.assertEqual(families[name].type, kind)

    def test_the_frame_histogram_counts_frames_and_its_buckets_add_up(self):
        support.wait_until(lambda: self.frame_count() > 10, what="frames counted")
        samples = self.families()["shard_frame_seconds"].samples
        buckets = [s for s in samples if s.name == "shard_frame_seconds_bucket"]
        count = next(s.value for s in samples if s.name == "shard_frame_seconds_count")
        self.assertEqual(buckets[-1].labels["le"], "+Inf")
        self.assertEqual(buckets[-1].value, count)
        self.assertEqual([b.value for b in buckets], sorted(b.value for b in buckets))

    def frame_count(self):
        samples = self.families()["shard_frame_seconds"].samples
        return next(s.value for s in samples if s.name == "shard_frame_seconds_count")

    def test_the_strategy_in_force_is_marked_and_follows_a_change(self):
        def in_force():
            return {s.labels["strategy"] for s in self.families()["shard_dispatch_strategy"].samples if s.value == 1}
        self.assertEqual(in_force(), {"main_loop"})
        client = Client(node.port)
        client.login("ops")
        self.assertEqual(client.post("/api/setting", {"name": "dispatch_strategy", "value": "on_block"}).status, 200)
        self.assertEqual(in_force(), {"on_block"})

    def test_only_metrics_are_served_there_and_the_console_port_has_no_metrics(self):
        self.assertEqual(scrape(node.metrics_port, "/api/stats")[0], 404)
        self.assertEqual(scrape(node.port)[0], 404)

    def test_metrics_are_off_unless_asked_for(self):
        plain = Node(metrics=False)
        try:
            self.assertNotIn("metrics on", plain.output())
        finally:
            plain.stop()


if __name__ == "__main__":
    unittest.main()
