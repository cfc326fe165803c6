#!/usr/bin/env bash
# The database benchmarks (docs/benchmarks.md, "The database"): starts its own
# private MariaDB (ops/mariadb.sh, in build/mariadb-bench: the tests' server
# is not touched), fills the table, then in each round runs the same
# primary-key SELECT from (a) the plain 4-thread Connector/C++ loop, the db
# pool's 100 tasklets (on a pool of 2 connections and of 4), the same pool
# driven by 100 C++ callers (no Python: the pool's own cost), 4 MySQLdb
# threads and 100 aiomysql tasks (on a pool of 4 connections and of 8), one
# after the other; each pooled client's ratio is taken at its better pool
# size of the round (the size a user would configure on this machine); then (b) 50 tasklets in SELECT SLEEP(0.1) loops inside `shard run`'s
# game loop. Prints the JSON lines, then the tables. Stops the server on exit.
# Every client goes over TCP, or over the server's unix socket with
# SHARD_BENCH_DB_TRANSPORT=socket (db_bench_transport.h).
#
#   [SHARD_BENCH_DB_TRANSPORT=socket] tools/bench/run_db_bench.sh [--quick] [--rounds N] [--no-sleep]
set -euo pipefail
cd "$(dirname "$0")/../.."

SHARD=build/bin/shard
PEER=/usr/bin/python3.11   # Debian's 3.11.2 with python3-mysqldb and python3-aiomysql
LOOP=build/bin/db_select_loop
POOL_LOOP=build/bin/db_pool_loop
BENCH=tools/bench/db_bench.py
DIR=build/mariadb-bench
SECONDS_A=5 ROUNDS=3 SLEEP=1 SECONDS_B=10
while (($#)); do
  case "$1" in
    --quick) SECONDS_A=1 ROUNDS=1 SECONDS_B=2 ;;
    --rounds) ROUNDS=$2; shift ;;
    --no-sleep) SLEEP=0 ;;
    *) echo "usage: $0 [--quick] [--rounds N] [--no-sleep]" >&2; exit 2 ;;
  esac
  shift
done
for f in "$SHARD" "$LOOP" "$POOL_LOOP"; do
  [[ -x $f ]] || { echo "run_db_bench: $f is missing: build first (cmake --build build)" >&2; exit 1; }
done

OUT=$(mktemp)
trap 'bash ops/mariadb.sh stop "$DIR" >&2; rm -f "$OUT"' EXIT
bash ops/mariadb.sh start "$DIR" >&2
run() { echo "+ $*" >&2; "$@" | tee -a "$OUT"; }

run "$SHARD" python "$BENCH" setup --server-dir "$DIR"
for round in $(seq 1 "$ROUNDS"); do
  echo "{\"round\": $round}" | tee -a "$OUT"
  run "$LOOP" "$DIR" 4 "$SECONDS_A" 10000
  for connections in 2 4; do
    run "$SHARD" python "$BENCH" select --server-dir "$DIR" --seconds "$SECONDS_A" --connections "$connections"
  done
  run "$POOL_LOOP" "$DIR" 4 100 "$SECONDS_A" 10000
  run "$PEER" "$BENCH" select --server-dir "$DIR" --seconds "$SECONDS_A" --impl mysqldb
  for connections in 4 8; do
    run "$PEER" "$BENCH" select --server-dir "$DIR" --seconds "$SECONDS_A" --impl aiomysql --connections "$connections"
  done
done
if [[ $SLEEP == 1 ]]; then
  run "$SHARD" run "$BENCH" sleep --server-dir "$DIR" --seconds "$SECONDS_B" --baseline
fi

"$PEER" - "$OUT" <<'EOF'
import json, statistics, sys
rounds, current, sleep = [], None, []
for line in open(sys.argv[1]):
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if "round" in r:
        current = {}
        rounds.append(current)
    elif r["bench"] == "db_select":
        # Pooled clients run at two pool sizes: each is kept by size, and
        # the impl's own entry is its better one.
        if r["impl"] in ("shard", "aiomysql"):
            current[f"{r['impl']}@{r['connections']}"] = r
            best = current.get(r["impl"])
            if best is None or r["value"] > best["value"]:
                current[r["impl"]] = r
        else:
            current[r["impl"]] = r
    elif r["bench"] == "db_sleep_loop":
        sleep.append(r)
print()
transport = next((x["transport"] for done in rounds for x in done.values() if "transport" in x), "tcp")
print(f"(a) primary-key SELECTs/s over {transport}; CPU us per query, client / server")
print("(pooled clients at each pool size; the ratios take each one's better size in the round)")
print("| round | C++ 4 threads | shard, 100 tasklets, pool of 2 | shard, pool of 4 | pool of 4, 100 C++ callers | MySQLdb 4 threads | aiomysql 100 tasks, pool of 4 | aiomysql, pool of 8 | shard/C++ (>= 0.80) | shard/MySQLdb (>= 1.25) | shard/aiomysql (>= 5) | pool without Python/C++ |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for n, r in enumerate(rounds, 1):
    def cell(impl):
        x = r.get(impl)
        if x is None:
            return "-"
        cpu = f" ({x['client_cpu_us_per_query']:.1f} / {x['server_cpu_us_per_query']:.1f})" if "client_cpu_us_per_query" in x else ""
        return f"{x['value']:,.0f}{cpu}"
    def ratio(peer):
        return f"{r['shard']['value'] / r[peer]['value']:.2f}" if "shard" in r and peer in r else "-"
    bare = f"{r['pool_cpp']['value'] / r['cpp_threads']['value']:.2f}" if "pool_cpp" in r and "cpp_threads" in r else "-"
    print(f"| {n} | {cell('cpp_threads')} | {cell('shard@2')} | {cell('shard@4')} | {cell('pool_cpp')} | {cell('mysqldb')} | "
          f"{cell('aiomysql@4')} | {cell('aiomysql@8')} | "
          f"{ratio('cpp_threads')} | {ratio('mysqldb')} | {ratio('aiomysql')} | {bare} |")
def median_ratio(peer):
    values = sorted(r["shard"]["value"] / r[peer]["value"] for r in rounds if "shard" in r and peer in r)
    return f"**{statistics.median(values):.2f}**" if values else "-"
print(f"| median | | | | | | | | {median_ratio('cpp_threads')} | {median_ratio('mysqldb')} | {median_ratio('aiomysql')} | |")
if sleep:
    print()
    print("(b) game loop while tasklets run SELECT SLEEP(0.1) in a loop")
    print("| phase | seconds | tasklets | FPS | strategy | frames | queries | overruns | busy per frame, mean / max ms | longest frame (wait included), ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for s in sleep:
        print(f"| {s['phase']} | {s['seconds']} | {s['tasklets']} | {s['fps']:g} | {s['strategy']} | {s['frames']} | "
              f"{s['queries']} | {s['overruns']} | {s['mean_busy_ms']} / {s['longest_busy_ms']} | {s['longest_frame_ms']} |")
EOF
