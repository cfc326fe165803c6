"""The swarm's plot: one PNG from the JSON swarm.py writes, with ONE LINE PER
DISPATCH STRATEGY in every panel (the way EVE showed Jita's pings):

- ping latency over the phase (per second: the worst ping of that second),
- for each operation, its latency by percentile (50 .. 99.9, then the max).

swarm.py runs it in a child process (matplotlib stays out of the bots' process);
it runs stand-alone too, with any Python that
has Debian's python3-matplotlib:

    /usr/bin/python3.11 tools/client/swarm_plot.py swarm.json swarm.png
"""

import json
import math
import sys

MAX_X = 4.0  # where the max sits on the "nines" axis (99.99 %)


def _nines(p):
    """The x of percentile p: 50 -> 0.3, 90 -> 1, 99 -> 2, 99.9 -> 3; the max at MAX_X."""
    return MAX_X if p >= 100 else min(MAX_X, -math.log10(1.0 - p / 100.0))


def _per_second(series):
    worst = {}
    for t, ms in series:
        second = int(t)
        worst[second] = max(worst.get(second, 0.0), ms)
    return sorted(worst.items())


def plot(report, path):
    import matplotlib
    matplotlib.use("Agg")  # no display: a file
    import matplotlib.pyplot as plt

    phases = report["phases"]
    ops = sorted({op for phase in phases for op, h in phase["ops"].items() if h["count"]})
    panels = 1 + len(ops)
    columns = min(3, panels)
    rows = (panels + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 4.2 * rows), squeeze=False)
    cells = [a for row in axes for a in row]
    for a in cells[panels:]:
        a.set_visible(False)

    over_time = cells[0]
    for phase in phases:
        points = _per_second(phase.get("ping_series", []))
        if points:
            over_time.plot([s for s, _ in points], [ms for _, ms in points], marker=".", linewidth=1,
                           label=phase["strategy"])
    over_time.set_title("ping: worst of each second")
    over_time.set_xlabel("seconds into the phase")
    over_time.set_ylabel("ms")
    over_time.set_yscale("log")
    over_time.grid(True, which="both", alpha=0.3)
    over_time.legend(title="dispatch strategy", fontsize="small")

    ticks = [(50, "50"), (90, "90"), (99, "99"), (99.9, "99.9"), (100, "max")]
    for a, op in zip(cells[1:], ops):
        for phase in phases:
            h = phase["ops"].get(op)
            if h and h["count"]:
                curve = [(p, ms) for p, ms in h["curve_ms"] if p >= 50]
                a.plot([_nines(p) for p, _ in curve], [ms for _, ms in curve], marker="o", markersize=3,
                       label="%s (n=%d, errors %d)" % (phase["strategy"], h["count"], h["errors"]))
        a.set_title("%s latency by percentile" % op)
        a.set_xticks([_nines(p) for p, _ in ticks], [label for _, label in ticks])
        a.set_xlabel("percentile")
        a.set_ylabel("ms")
        a.set_yscale("log")
        a.grid(True, which="both", alpha=0.3)
        a.legend(fontsize="small")

    figure.suptitle("swarm: %d bots connected of %d, mix %s" % (report["connected"], report["bots"],
                                                                 ",".join("%s=%g" % kv for kv in report["mix"].items())))
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv):
    if len(argv) != 2:
        raise SystemExit("usage: swarm_plot.py REPORT.json OUT.png")
    with open(argv[0], encoding="utf-8") as f:
        plot(json.load(f), argv[1])


if __name__ == "__main__":
    main(sys.argv[1:])
