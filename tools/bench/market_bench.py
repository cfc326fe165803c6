"""The market benchmark (docs/benchmarks.md, "The market"): trades per second
through the market service, beside the bare money transfer from the same
tasklets on the same pool in the same run.

    build/bin/shard python tools/bench/market_bench.py --server-dir DIR [--seconds 5] [--tasklets 8]

(tools/bench/run_market_bench.sh starts a private MariaDB for it.)

  market    each tasklet places, in a loop, a sell of 1 unit at 100 then a
            buy of 1 at 100 in one region, through the `market` service as a
            relayed session call runs it (sol_sessions.SolSessions.call: the
            session's character and region, market_ledger's transaction).
            A buy takes the oldest resting sell: every buy is a trade. Run
            twice: every tasklet in one book (one item in one region: its
            requests run one after the other, market_books' lock), and each
            tasklet in a book of its own. Reported: trades/s, placements/s,
            the sell+buy pair's latency p50/p99, retries, database
            statements per trade.
  transfer  the peer: each tasklet moves 1 unit of money between two wallets
            of its own in a transaction of the same statements a trade's
            money needs at least (two UPDATEs, two wallet_transactions
            INSERTs), no contention: the floor of one money move on this pool.

One JSON line per figure on stdout.
"""

import argparse
import json
import os
import platform
import sys
import time
import types

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "db", "tests", "python"))

import db  # noqa: E402
import db_migrate  # noqa: E402
import rpc_services  # noqa: E402
import sol_notify  # noqa: E402
import sol_sessions  # noqa: E402
import stackless  # noqa: E402
import uthread  # noqa: E402

import market  # noqa: E402
import market_ledger  # noqa: E402

DATABASE = "shard_test_market_bench"  # the shard_test_* names are the ones ops/mariadb.sh grants
REGION, SYSTEM, TYPE = 10000001, 30000001, 34
MONEY = 10**15
_request_ids = iter(range(1, 1 << 62))  # one sequence for every run: an id is never reused


def emit(bench, impl, **fields):
    print(json.dumps(dict(bench=bench, impl=impl, python=platform.python_version(), **fields)), flush=True)


def connect(server_dir, pool, database):
    env = {}
    with open(os.path.join(server_dir, "client.env"), encoding="utf-8") as f:
        for line in f:
            name, _, value = line.strip().partition("=")
            if name:
                env[name] = value
    settings = db.settings_from_env(env)
    settings.update(pool_size=pool, database=database, socket="")  # TCP, as a node runs
    db.connect(**settings)


def set_up(options):
    connect(options.server_dir, 2, "shard")
    db.execute("DROP DATABASE IF EXISTS " + DATABASE)
    db.execute("CREATE DATABASE %s CHARACTER SET utf8mb4" % DATABASE)
    db.close()
    connect(options.server_dir, options.connections, DATABASE)
    db_migrate.migrate()
    db.execute("INSERT INTO regions (id, name) VALUES (?, 'bench')", REGION)
    db.execute("INSERT INTO solar_systems (id, name, security, x, y, z, region_id) VALUES (?, 'bench', 1, 0, 0, 0, ?)",
               SYSTEM, REGION)
    account = db.execute("INSERT INTO accounts (name, password_hash) VALUES ('bench', 'not a hash')").lastrowid
    characters = []
    for n in range(2 * options.tasklets):
        character = db.execute("INSERT INTO characters (account_id, name) VALUES (?, ?)", account,
                               "bench-%d" % n).lastrowid
        db.execute("INSERT INTO wallets (character_id, balance) VALUES (?, ?)", character, MONEY)
        characters.append(character)
    return characters


def sessions_for(characters):
    """A sol's session table with one session per character, in the bench's
    system, and the market service with a sol's notifier (no proxy is linked:
    the counterparties' notifications are made, then dropped and counted)."""
    services = rpc_services.Services()
    table = sol_sessions.SolSessions(services, lambda: 1)
    services.register(market.Market(types.SimpleNamespace(notifier=sol_notify.Notifier(table))))
    for character in characters:
        session = sol_sessions.SolSession(character, 1, None)
        session.attributes.update(role="player", character_id=character, solar_system_id=SYSTEM)
        table.by_id[character] = session
    return table


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] if values else 0.0


def measure(options, worker, count):
    """Runs options.tasklets workers; (elapsed, counts within the window, latencies within it, queries)."""
    state = {"stop": False, "window": False, "latencies": []}

    def timed(*args):
        while not state["stop"]:
            start = time.perf_counter()
            worker(*args)
            if state["window"]:
                state["latencies"].append(time.perf_counter() - start)

    def controller():
        uthread.Sleep(options.warmup)
        state["window"], t0, n0, q0 = True, time.perf_counter(), count(), db.stats()["queries"]
        uthread.Sleep(options.seconds)
        state["window"], state["stop"] = False, True
        state["result"] = (time.perf_counter() - t0, count() - n0, db.stats()["queries"] - q0)

    for n in range(options.tasklets):
        uthread.new(timed, n)
    uthread.new(controller)
    stackless.run()
    elapsed, done, queries = state["result"]
    return elapsed, done, state["latencies"], queries


def bench_market(options, characters, books):
    table = sessions_for(characters)

    def place(n):
        trader, item = characters[n], TYPE + n % books
        table.call(trader, "market", "place", ["sell", item, 1, 100, "s-%d" % next(_request_ids)], {})
        table.call(trader, "market", "place", ["buy", item, 1, 100, "b-%d" % next(_request_ids)], {})

    retries0 = market_ledger.stats["retries"]
    elapsed, trades, latencies, queries = measure(options, place, lambda: market_ledger.stats["trades"])
    emit("market", "market.place, %s" % ("one book" if books == 1 else "%d books" % books), books=books, seconds=round(elapsed, 3), trades=trades, value=round(trades / elapsed, 1),
         unit="trades/s", placements_per_s=round(2 * len(latencies) / elapsed, 1),
         pair_p50_ms=round(percentile(latencies, 0.5) * 1e3, 2), pair_p99_ms=round(percentile(latencies, 0.99) * 1e3, 2),
         retries=market_ledger.stats["retries"] - retries0, statements_per_trade=round(queries / max(trades, 1), 1),
         tasklets=options.tasklets, connections=options.connections)


def bench_transfer(options, characters):
    done = [0]

    def transfer(n):
        payer, payee = characters[2 * n], characters[2 * n + 1]
        with db.transaction() as tx:
            tx.execute("UPDATE wallets SET balance = balance - 1 WHERE character_id = ?", payer)
            tx.execute("UPDATE wallets SET balance = balance + 1 WHERE character_id = ?", payee)
            tx.execute("INSERT INTO wallet_transactions (character_id, amount, balance_after, reason)"
                       " SELECT character_id, -1, balance, 'bench' FROM wallets WHERE character_id = ?", payer)
            tx.execute("INSERT INTO wallet_transactions (character_id, amount, balance_after, reason)"
                       " SELECT character_id, 1, balance, 'bench' FROM wallets WHERE character_id = ?", payee)
        done[0] += 1

    elapsed, transfers, latencies, queries = measure(options, transfer, lambda: done[0])
    emit("market", "bare transfer", seconds=round(elapsed, 3), transfers=transfers,
         value=round(transfers / elapsed, 1), unit="transfers/s",
         p50_ms=round(percentile(latencies, 0.5) * 1e3, 2), p99_ms=round(percentile(latencies, 0.99) * 1e3, 2),
         statements_per_transfer=round(queries / max(transfers, 1), 1), tasklets=options.tasklets,
         connections=options.connections)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-dir", required=True, help="the private MariaDB's directory (ops/mariadb.sh)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--tasklets", type=int, default=8)
    parser.add_argument("--connections", type=int, default=4)
    options = parser.parse_args()
    characters = set_up(options)
    bench_market(options, characters, 1)
    bench_market(options, characters, options.tasklets)
    bench_transfer(options, characters)
    db.execute("DROP DATABASE " + DATABASE)


if __name__ == "__main__":
    main()
