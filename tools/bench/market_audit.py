"""The market's books before and after a run (scripts/market_audit.py;
docs/market.md, "Auditing the books"): issue 11's "no lost or duplicated
market transaction", proved from the database.

    build/bin/shard python tools/bench/market_audit.py snapshot BASELINE.json
    ... the run ...
    build/bin/shard python tools/bench/market_audit.py check BASELINE.json [--trade-log LOG.jsonl] [--json OUT]

Connects with db.connect(): the SHARD_DB_* settings in the environment (a
private MariaDB's client.env, sourced with `set -a` as swarm_bench.sh does).
`snapshot` writes the baseline. `check` prints a one-line JSON summary (the
counts, `problems`, the first 20 in `first_problems`), writes every problem
kept with the counts to OUT if given, and exits 1 when there are problems.
LOG.jsonl: one JSON object per request a bot started (market_audit's trade
log), read as it is checked. Exit 2: a malformed log or baseline.
"""

import argparse
import json
import os
import sys

# This file has the library's name (scripts/market_audit.py): its own folder,
# which Python puts first on sys.path, must not shadow it.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != HERE]

import db  # noqa: E402
import market_audit  # noqa: E402


def log_entries(path):
    """The trade log's objects, one line at a time (blank lines skipped)."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError as e:
                raise ValueError("%s line %d: not JSON: %s" % (path, number, e)) from None


def snapshot(options):
    baseline = market_audit.snapshot()
    with open(options.baseline, "w", encoding="utf-8") as f:
        json.dump(baseline, f)
    print(json.dumps({"baseline": options.baseline, "money": baseline["money"],
                      "characters": len(baseline["offsets"]), "last": baseline["last"]}), flush=True)
    return 0


def check(options):
    with open(options.baseline, encoding="utf-8") as f:
        baseline = json.load(f)
    log = None if options.trade_log is None else log_entries(options.trade_log)
    result = market_audit.check(baseline, log)
    if options.json:
        with open(options.json, "w", encoding="utf-8") as f:
            json.dump({"counts": result.counts, "problems": result.problems}, f, indent=1)
    print(json.dumps(result.summary(20)), flush=True)
    return 0 if result.ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    taking = commands.add_parser("snapshot", help="write the baseline before the run")
    taking.add_argument("baseline", help="the baseline's JSON file to write")
    taking.set_defaults(run=snapshot)
    checking = commands.add_parser("check", help="check the books against the baseline")
    checking.add_argument("baseline", help="snapshot's JSON file")
    checking.add_argument("--trade-log", help="the bots' JSON lines, one per request started")
    checking.add_argument("--json", help="write the counts and every problem kept here")
    checking.set_defaults(run=check)
    options = parser.parse_args()
    db.connect(pool_size=1)
    try:
        return options.run(options)
    except (OSError, ValueError) as e:  # a file missing, a malformed log or baseline: said which, not a traceback
        print("market_audit: %s" % (e,), file=sys.stderr)
        return 2
    finally:
        db.close()


if __name__ == "__main__":
    sys.exit(main())
