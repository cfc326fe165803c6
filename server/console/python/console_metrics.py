"""/metrics in Prometheus' text exposition format (version 0.0.4), served on
its own address (off by default) without a session: a scraper holds no
cookie, and the address is meant for the monitoring network only.

The frame time histogram is filled by a tick hook (one Python call per frame,
only while metrics are served); everything else is read at scrape time from
the engine's own counters."""

import bisect

import gameloop

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
FRAME_BUCKETS_S = (0.001, 0.002, 0.005, 0.010, 0.020, 0.033, 0.050, 0.100, 0.250, 0.500, 1.0)


class FrameHistogram:
    """Frame times (the engine's frame_ms of each finished frame)."""

    def __init__(self):
        self.counts = [0] * (len(FRAME_BUCKETS_S) + 1)
        self.sum_s = 0.0
        self.count = 0

    def tick(self, frame, dt):
        seconds = gameloop.stats()["frame_ms"] / 1e3
        self.counts[bisect.bisect_left(FRAME_BUCKETS_S, seconds)] += 1
        self.sum_s += seconds
        self.count += 1


def _label(value):
    return str(value).replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


class _Writer:

    def __init__(self, node):
        self.lines = []
        self.node = _label(node)

    def metric(self, name, kind, help_text, samples):
        """samples: [(suffix, {label: value}, number)]"""
        self.lines.append("# HELP %s %s" % (name, help_text))
        self.lines.append("# TYPE %s %s" % (name, kind))
        for suffix, labels, value in samples:
            labels = dict(labels, node=self.node)
            text = ",".join('%s="%s"' % (k, _label(v)) for k, v in sorted(labels.items()))
            self.lines.append("%s%s{%s} %s" % (name, suffix, text, repr(float(value))))

    def text(self):
        return "\n".join(self.lines) + "\n"


def render(commands, console_stats, histogram=None):
    s = commands.stats()
    frame, io = s["frame"], s["io"]
    w = _Writer(s["node"])
    if histogram is not None:
        samples, cumulative = [], 0
        for bound, count in zip(FRAME_BUCKETS_S, histogram.counts):
            cumulative += count
            samples.append(("_bucket", {"le": repr(bound)}, cumulative))
        samples.append(("_bucket", {"le": "+Inf"}, histogram.count))
        samples += [("_sum", {}, histogram.sum_s), ("_count", {}, histogram.count)]
        w.metric("shard_frame_seconds", "histogram", "time each game-loop frame took", samples)
    w.metric("shard_frame_overruns_total", "counter", "frames that ran past their deadline",
             [("", {}, frame.get("overruns", 0))])
    w.metric("shard_frames_total", "counter", "frames run", [("", {}, frame.get("frame", 0))])
    w.metric("shard_fps_target", "gauge", "the frame rate set", [("", {}, s["fps_target"])])
    w.metric("shard_tasklets_alive", "gauge", "tasklets alive", [("", {}, frame.get("alive", 0))])
    w.metric("shard_tasklet_switches", "gauge", "tasklet switches in the last frame",
             [("", {}, frame.get("switches", 0))])
    w.metric("shard_runnable_tasklets", "gauge", "tasklets in the run queue (its depth)", [("", {}, s["runnable"])])
    w.metric("shard_dispatch_strategy", "gauge", "1 for the dispatch strategy in force",
             [("", {"strategy": name}, 1 if name == s["strategy"] else 0) for name in gameloop.STRATEGIES])
    latency, completions = [], []
    for strategy, d in sorted(s["dispatch"].items()):
        if not isinstance(d, dict):
            continue
        lat = d.get("dispatch_latency") or d.get("dispatch") or {}
        for quantile, key in (("0.5", "p50_us"), ("0.99", "p99_us")):
            if key in lat:
                latency.append(("", {"strategy": strategy, "quantile": quantile}, lat[key] / 1e6))
        if "count" in lat:
            latency.append(("_count", {"strategy": strategy}, lat["count"]))
        completions.append(("", {"strategy": strategy}, d.get("completions", 0)))
    w.metric("shard_dispatch_latency_seconds", "summary", "completion to runnable, per dispatch strategy", latency)
    w.metric("shard_dispatch_completions_total", "counter", "completions dispatched, per strategy", completions)
    w.metric("shard_worker_threads", "gauge", "threads in the worker pool", [("", {}, s["workers"])])
    w.metric("shard_io_threads", "gauge", "IO threads", [("", {}, io.get("threads", 0))])
    w.metric("shard_io_waits", "gauge", "asynchronous operations waited for now (queue depth)",
             [("", {}, io.get("waits", 0))])
    w.metric("shard_net_connections", "gauge", "packet connections open (clients, node links)",
             [("", {}, s["net"]["connections"])])
    w.metric("shard_net_listeners", "gauge", "listening packet ports", [("", {}, s["net"]["listeners"])])
    if s["db"] is not None:
        w.metric("shard_db_waiting", "gauge", "database calls queued for a connection (queue depth)",
                 [("", {}, s["db"].get("waiting", 0))])
        w.metric("shard_db_in_use", "gauge", "database connections busy", [("", {}, s["db"].get("in_use", 0))])
    w.metric("shard_console_connections", "gauge", "open console connections (HTTP and WebSocket)",
             [("", {}, console_stats.get("open", 0))])
    w.metric("shard_console_bytes_in_total", "counter", "bytes the console read",
             [("", {}, console_stats.get("bytes_in", 0))])
    w.metric("shard_console_bytes_out_total", "counter", "bytes the console wrote",
             [("", {}, console_stats.get("bytes_out", 0))])
    return w.text()
