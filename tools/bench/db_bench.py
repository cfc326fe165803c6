"""The database benchmarks (docs/benchmarks.md, "The database").

Run by tools/bench/run_db_bench.sh, which starts a private MariaDB
(ops/mariadb.sh), fills the table, runs each client in turn against it and
prints the table. By hand, with a server running in DIR:

  build/bin/shard python tools/bench/db_bench.py setup  --server-dir DIR
  build/bin/shard python tools/bench/db_bench.py select --server-dir DIR            # the pool, 100 tasklets
  /usr/bin/python3.11    tools/bench/db_bench.py select --server-dir DIR --impl mysqldb
  /usr/bin/python3.11    tools/bench/db_bench.py select --server-dir DIR --impl aiomysql
  build/bin/shard run    tools/bench/db_bench.py sleep  --server-dir DIR            # (b), in the game loop

  select  (a) primary-key SELECTs/s (`SELECT id, name, value FROM bench_kv
          WHERE id = ?`, random ids, one row of three columns read back):
          shard: 100 tasklets through the db pool (4 connections; prepared
          once per connection); mysqldb: 4 Python threads, one connection
          each; aiomysql: 100 asyncio tasks over a pool of 4 connections.
          Also the client's and the server's CPU per query.
  sleep   (b) inside `shard run`'s game loop (30 FPS): 50 tasklets each run
          `SELECT SLEEP(0.1)` in a loop for 10 s (pool of 50 connections);
          the loop's frame overruns, mean and longest busy time per frame
          (phases 2-5) and longest frame, beside the same loop idle for the
          same time (--baseline).

One JSON line per figure on stdout.
"""

import argparse
import json
import os
import platform
import random
import sys
import threading
import time

SELECT = "SELECT id, name, value FROM bench_kv WHERE id = ?"


def emit(bench, impl, **fields):
    print(json.dumps(dict(bench=bench, impl=impl, python=platform.python_version(), **fields)), flush=True)


def client_settings(server_dir):
    env = {}
    with open(os.path.join(server_dir, "client.env"), encoding="utf-8") as f:
        for line in f:
            name, _, value = line.strip().partition("=")
            if name:
                env[name] = value
    with open(env["SHARD_DB_PASSWORD_FILE"], encoding="utf-8") as f:
        password = f.read().strip()
    # The same transport for every client: TCP (a database on its own host,
    # the production case) unless SHARD_BENCH_DB_TRANSPORT=socket (the unix
    # socket: the database on the node's own host).
    settings = dict(user=env["SHARD_DB_USER"], password=password, database=env["SHARD_DB_DATABASE"])
    if transport() == "socket":
        return dict(settings, host="", port=0, socket=env["SHARD_DB_SOCKET"])
    return dict(settings, host=env["SHARD_DB_HOST"], port=int(env["SHARD_DB_PORT"]), socket="")


def transport():
    value = os.environ.get("SHARD_BENCH_DB_TRANSPORT", "tcp")
    if value not in ("tcp", "socket"):
        raise SystemExit(f"db_bench: SHARD_BENCH_DB_TRANSPORT={value!r}: tcp or socket")
    return value


def peer_address(settings):
    """The keyword arguments MySQLdb and aiomysql take for the transport."""
    if settings["socket"]:
        return dict(unix_socket=settings["socket"])
    return dict(host=settings["host"], port=settings["port"])


def server_cpu_s(server_dir):
    """mariadbd's CPU time so far (user + system), from /proc."""
    with open(os.path.join(server_dir, "mysqld.pid"), encoding="utf-8") as f:
        pid = f.read().strip()
    with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Window:
    """The measured interval: queries, wall time, client and server CPU."""

    def __init__(self, server_dir):
        self.server_dir = server_dir

    def begin(self, count):
        self.count0, self.t0 = count, time.perf_counter()
        self.cpu0, self.server0 = time.process_time(), server_cpu_s(self.server_dir)

    def end(self, count):
        self.elapsed = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.cpu0
        self.server = server_cpu_s(self.server_dir) - self.server0
        self.queries = count - self.count0

    def report(self, impl, **fields):
        per = 1e6 / max(self.queries, 1)
        emit("db_select", impl, seconds=round(self.elapsed, 3), queries=self.queries,
             value=round(self.queries / self.elapsed, 1), unit="queries/s",
             client_cpu_us_per_query=round(self.cpu * per, 2), server_cpu_us_per_query=round(self.server * per, 2),
             transport=transport(), **fields)


def random_ids(seed, rows):
    """The ids a client asks for, drawn before the clock starts: the same
    cheap lookup per query for every client, none of them paying
    random.randint's ~1 us of Python per query."""
    rng = random.Random(seed)
    return [rng.randint(1, rows) for _ in range(4096)]


def check_row(row, wanted):
    if row[0] != wanted or row[2] != wanted * 7:
        raise AssertionError(f"bench_kv row {wanted} came back as {row!r}")


# ---- (a) shard: tasklets through the pool ---------------------------------

def select_shard(options):
    import db
    import stackless
    import uthread

    db.connect(pool_size=options.connections, **client_settings(options.server_dir))
    done = [0]
    stop = [False]

    def worker(seed):
        ids, n = random_ids(seed, options.rows), 0
        while not stop[0]:
            wanted = ids[n & 4095]
            n += 1
            (row,) = db.query(SELECT, wanted)
            check_row(row, wanted)
            done[0] += 1

    window = Window(options.server_dir)

    def controller():
        uthread.Sleep(options.warmup)
        window.begin(done[0])
        uthread.Sleep(options.seconds)
        window.end(done[0])
        stop[0] = True

    for n in range(options.tasklets):
        uthread.new(worker, n)
    uthread.new(controller)
    stackless.run()
    stats = db.stats()
    window.report("shard", tasklets=options.tasklets, connections=options.connections,
                  latency_p50_us=round(stats["latency_p50_s"] * 1e6, 1),
                  latency_p99_us=round(stats["latency_p99_s"] * 1e6, 1), errors=stats["errors"])
    db.close()


# ---- (a) peers: MySQLdb threads, aiomysql tasks ---------------------------

def select_mysqldb(options):
    import MySQLdb

    settings = client_settings(options.server_dir)
    done = [0] * options.threads
    stop = threading.Event()
    sql = SELECT.replace("?", "%s")

    def worker(n):
        connection = MySQLdb.connect(**peer_address(settings), user=settings["user"],
                                     passwd=settings["password"], db=settings["database"], charset="utf8mb4")
        cursor = connection.cursor()
        ids, k = random_ids(n, options.rows), 0
        while not stop.is_set():
            wanted = ids[k & 4095]
            k += 1
            cursor.execute(sql, (wanted,))
            (row,) = cursor.fetchall()
            check_row(row, wanted)
            done[n] += 1
        connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(options.threads)]
    for t in threads:
        t.start()
    window = Window(options.server_dir)
    time.sleep(options.warmup)
    window.begin(sum(done))
    time.sleep(options.seconds)
    window.end(sum(done))
    stop.set()
    for t in threads:
        t.join()
    window.report("mysqldb", threads=options.threads, connections=options.threads,
                  version=MySQLdb.__version__)


def select_aiomysql(options):
    import asyncio

    import aiomysql

    settings = client_settings(options.server_dir)
    sql = SELECT.replace("?", "%s")

    async def main():
        pool = await aiomysql.create_pool(**peer_address(settings), user=settings["user"],
                                          password=settings["password"], db=settings["database"],
                                          charset="utf8mb4", minsize=options.connections,
                                          maxsize=options.connections)
        done = [0]
        stop = [False]

        async def worker(n):
            ids, k = random_ids(n, options.rows), 0
            while not stop[0]:
                wanted = ids[k & 4095]
                k += 1
                async with pool.acquire() as connection:
                    async with connection.cursor() as cursor:
                        await cursor.execute(sql, (wanted,))
                        (row,) = await cursor.fetchall()
                check_row(row, wanted)
                done[0] += 1

        tasks = [asyncio.create_task(worker(n)) for n in range(options.tasklets)]
        window = Window(options.server_dir)
        await asyncio.sleep(options.warmup)
        window.begin(done[0])
        await asyncio.sleep(options.seconds)
        window.end(done[0])
        stop[0] = True
        await asyncio.gather(*tasks)
        pool.close()
        await pool.wait_closed()
        window.report("aiomysql", tasks=options.tasklets, connections=options.connections,
                      version=aiomysql.__version__)

    asyncio.run(main())


# ---- setup and (b) ---------------------------------------------------------

def setup(options):
    import db
    import stackless

    def body():
        db.execute("DROP TABLE IF EXISTS bench_kv")
        db.execute("CREATE TABLE bench_kv (id INT PRIMARY KEY, name VARCHAR(32) NOT NULL, value BIGINT NOT NULL)"
                   " ENGINE=InnoDB")
        # MariaDB's sequence engine: one statement, the count bound like any value.
        db.execute("INSERT INTO bench_kv SELECT seq, CONCAT('name-', seq), seq * 7 FROM seq_1_to_10000000"
                   " WHERE seq <= ?", options.rows)
        (count,) = db.query("SELECT COUNT(*) FROM bench_kv")[0]
        emit("db_setup", "shard", rows=count)

    db.connect(pool_size=1, **client_settings(options.server_dir))
    stackless.tasklet(body)()
    stackless.run()
    db.close()


def sleep_in_loop(options):
    """(b): must run under `shard run`, which runs the game loop after this."""
    import db
    import gameloop
    import uthread

    db.connect(pool_size=options.tasklets, **client_settings(options.server_dir))
    phases = []  # (name, seconds)
    if options.baseline:
        phases.append(("idle", options.seconds))
    phases.append(("sleepers", options.seconds))
    queries = [0]
    running = [False]

    def sleeper():
        while True:
            while not running[0]:
                uthread.Sleep(0.05)
            db.query("SELECT SLEEP(0.1)")
            queries[0] += 1

    state = {"phase": -1}

    def start_phase(frame):
        state["phase"] += 1
        name, _ = phases[state["phase"]]
        running[0] = name == "sleepers"
        s = gameloop.stats()
        state.update(start=time.monotonic(), overruns=s["overruns"], frame=s["frame"], queries=queries[0],
                     busy=s["busy_ms_total"], longest=0.0, longest_wall=0.0)

    def end_phase():
        name, _ = phases[state["phase"]]
        s = gameloop.stats()
        frames = s["frame"] - state["frame"]
        emit("db_sleep_loop", "shard", phase=name, seconds=round(time.monotonic() - state["start"], 3),
             tasklets=options.tasklets if name == "sleepers" else 0, fps=s["fps"],
             strategy=gameloop.dispatch_strategy(), frames=frames, queries=queries[0] - state["queries"],
             overruns=s["overruns"] - state["overruns"],
             mean_busy_ms=round((s["busy_ms_total"] - state["busy"]) / max(frames, 1), 3),
             longest_busy_ms=round(state["longest"], 3), longest_frame_ms=round(state["longest_wall"], 3))

    def tick(frame, dt):
        if state["phase"] < 0:
            start_phase(frame)
            return
        # The previous frame's figures (this one's are set after its ticks):
        # its work (phases 2-5) and its whole length, the phase-1 wait included.
        last = gameloop.stats()
        state["longest"] = max(state["longest"], last["frame_ms"] - last["wait_ms"])
        state["longest_wall"] = max(state["longest_wall"], last["frame_ms"])
        if time.monotonic() - state["start"] < phases[state["phase"]][1]:
            return
        end_phase()
        if state["phase"] + 1 < len(phases):
            start_phase(frame)
            return
        gameloop.remove_tick(tick)
        gameloop.stop()

    for _ in range(options.tasklets):
        uthread.new(sleeper)
    gameloop.add_tick(tick)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bench", choices=("setup", "select", "sleep"))
    parser.add_argument("--server-dir", required=True, help="ops/mariadb.sh's directory (client.env, mysqld.pid)")
    parser.add_argument("--impl", choices=("shard", "mysqldb", "aiomysql"), default="shard")
    parser.add_argument("--rows", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--tasklets", type=int, default=None, help="tasklets or asyncio tasks (select: 100, sleep: 50)")
    parser.add_argument("--threads", type=int, default=4, help="mysqldb threads")
    parser.add_argument("--connections", type=int, default=4, help="pool size (select)")
    parser.add_argument("--baseline", action="store_true", help="sleep: also the idle loop first, as long")
    options = parser.parse_args(argv)
    if options.tasklets is None:
        options.tasklets = 50 if options.bench == "sleep" else 100
    if options.bench == "setup":
        setup(options)
    elif options.bench == "sleep":
        sleep_in_loop(options)
    else:
        {"shard": select_shard, "mysqldb": select_mysqldb, "aiomysql": select_aiomysql}[options.impl](options)


if __name__ == "__main__":
    main(sys.argv[1:])
