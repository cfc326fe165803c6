"""Latency figures of the swarm: a log-bucketed histogram per operation (1 %
wide buckets, so a million samples cost a few hundred integers), exact count,
errors, mean and max, and the percentiles the report and the plot need.
Plain Python, no server code: swarm_plot.py reads what to_json() writes.
The native bots (tools/bots, swarm.py --native) send the raw form, which
from_raw() and merge_raw() read."""

import math

BUCKET_RATIO = 1.01
_LOG_RATIO = math.log(BUCKET_RATIO)
MIN_S = 1e-6                       # anything faster counts as 1 us
PERCENTILES = (50, 90, 99, 99.9)
CURVE = (0, 10, 25, 50, 75, 90, 95, 98, 99, 99.5, 99.9, 100)  # the plot's x axis


class Histogram:
    def __init__(self):
        self.buckets = {}
        self.count = self.errors = 0
        self.total = 0.0
        self.max = 0.0
        self.error_samples = {}   # message -> count, at most 10 kinds

    @classmethod
    def from_raw(cls, raw):
        """A histogram from the raw form shard-bots writes: {"buckets": {"INDEX": COUNT}, "count", "errors",
        "total_s", "max_s", "error_samples": {message: count}} (the same buckets as add())."""
        h = cls()
        h.merge_raw(raw)
        return h

    def merge_raw(self, raw):
        """Adds the samples and errors of a raw histogram (from_raw's form) to this one."""
        for index, n in raw.get("buckets", {}).items():
            self.buckets[int(index)] = self.buckets.get(int(index), 0) + int(n)
        self.count += int(raw.get("count", 0))
        self.total += float(raw.get("total_s", 0.0))
        self.max = max(self.max, float(raw.get("max_s", 0.0)))
        self.errors += int(raw.get("errors", 0))
        for message, n in raw.get("error_samples", {}).items():
            if message in self.error_samples or len(self.error_samples) < 10:
                self.error_samples[message] = self.error_samples.get(message, 0) + int(n)

    def add(self, seconds):
        seconds = max(seconds, MIN_S)
        index = int(math.log(seconds / MIN_S) / _LOG_RATIO)
        self.buckets[index] = self.buckets.get(index, 0) + 1
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def error(self, message):
        self.errors += 1
        if message in self.error_samples or len(self.error_samples) < 10:
            self.error_samples[message] = self.error_samples.get(message, 0) + 1

    def percentile(self, p):
        """Seconds under which p % of the samples lie (the bucket's upper edge, capped at the max)."""
        if not self.count:
            return None
        if p >= 100:
            return self.max
        rank = max(1, math.ceil(self.count * p / 100.0))
        seen = 0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if seen >= rank:
                return min(MIN_S * BUCKET_RATIO ** (index + 1), self.max)
        return self.max

    def to_json(self):
        """Milliseconds, rounded to the microsecond."""
        def ms(s):
            return None if s is None else round(s * 1000.0, 3)
        out = {"count": self.count, "errors": self.errors, "mean_ms": ms(self.total / self.count) if self.count else None,
               "max_ms": ms(self.max) if self.count else None}
        for p in PERCENTILES:
            out["p%s_ms" % ("%g" % p).replace(".", "_")] = ms(self.percentile(p))
        out["curve_ms"] = [[p, ms(self.percentile(p))] for p in CURVE] if self.count else []
        if self.error_samples:
            out["error_samples"] = dict(self.error_samples)
        return out
