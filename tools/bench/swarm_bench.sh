#!/usr/bin/env bash
# Issue 11 item 9: the bot swarm (tools/client/swarm.py) against one proxy and
# two sols on this machine (127.0.0.1, .2, .3), on a private MariaDB of its own
# (BUILD/bench-swarm/mariadb, kept between runs so the bots' accounts, whose
# scrypt hashes cost ~50 ms each, are made once).
#
#   bash tools/bench/swarm_bench.sh [BOTS [SECONDS [STRATEGIES]]]
#   (defaults 1000, 20 s per phase, main_loop,pending_call; MIX=move=1,ping=0.2,trade=0.01 by default)
#   NATIVE=1: the measured run's bots are shard-bots (tools/bots: C++, the
#   same behaviour; NATIVE_THREADS=T IO threads, default 1) driven by swarm.py --native.
#   PROXY_IO_THREADS=N: the proxy's IO threads (default 1, as every node's here).
#   STRATEGY=S: the nodes' configured dispatch strategy (loop.strategy), in
#   force through the logins and until the first phase (default main_loop).
#   MOVEMENT_INTERVAL=S: the sols' sol.movement_update_interval (default 1, the nodes' own).
#   TRADE_TYPES=N: the bots trade N item types (default 20: a market's many
#   books; one book takes its requests one at a time, docs/market.md).
#   SCENARIO=hub: the hot hub (EVE's Jita): every ship in one system, ~50 within
#   range of each, trading and chatting (MIX=move=1,ping=0.2,chat=0.05,trade=0.01
#   by default), its sol saturated; the pings measure it.
#
# Steps: migrate; two solar systems in one market region; the nodes (the proxy's login throttle
# raised for the swarm: proxy.logins_per_address); a first short swarm run
# makes the accounts and the bots' characters (all at the starter system's
# origin; always the Python bots, whose account creation is swarm.py's anyway); then the ships are split between the two systems (so each sol
# hosts half) and scattered in a cube sized for about 10 ships within the
# sols' interest radius (100 km) of each; the measured run: one phase per
# dispatch strategy, the market's books snapshotted before it and audited
# after it against the bots' trade log (tools/bench/market_audit.py: no
# transaction lost or duplicated, no money made or lost). Prints the swarm's
# report (BUILD/bench-swarm/swarm.json, swarm.png), the nodes' CPU and memory
# per connected bot and the audit (BUILD/bench-swarm/audit.json); exits 1 if
# the audit finds a problem.
set -euo pipefail
cd "$(dirname "$0")/../.."

bots=${1:-1000} seconds=${2:-20} strategies=${3:-main_loop,pending_call} scenario=${SCENARIO:-spread}
case $scenario in
  spread) mix=${MIX:-move=1,ping=0.2,trade=0.01} ;;
  hub) mix=${MIX:-move=1,ping=0.2,chat=0.05,trade=0.01} ;;
  *) echo "swarm_bench: SCENARIO is spread or hub, not '$scenario'" >&2; exit 2 ;;
esac
build=${BUILD:-build}
shard=$build/bin/shard
native=()
if [[ ${NATIVE:-0} == 1 ]]; then
  native=(--native "$build/bin/shard-bots" --native-threads "${NATIVE_THREADS:-1}")
  [[ -x $build/bin/shard-bots ]] || { echo "swarm_bench: NATIVE=1 needs $build/bin/shard-bots (build it)" >&2; exit 2; }
fi
certs=$(realpath "$build/devcert")
dir=$build/bench-swarm
mkdir -p "$dir/logs"
dir=$(realpath "$dir")
port=${PORT:-26100} sol_port=${SOL_PORT:-26101}
ramp=$(python3 -c "print(max(5, $bots * 0.1))")  # 10 logins a second: each is a ~50 ms scrypt check on the proxy

bash ops/mariadb.sh start "$dir/mariadb" >/dev/null
set -a
# shellcheck source=/dev/null
source "$dir/mariadb/client.env"
set +a

sessions_ended() {  # every client session gone (at most 60 s), then 2 s for what the sols still finish
  "$shard" python - <<'PY'
import time, db
db.connect()
end = time.monotonic() + 60
while db.query("SELECT COUNT(*) FROM client_sessions")[0][0] and time.monotonic() < end:
    time.sleep(0.2)
db.close()
PY
  sleep 2
}

pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  bash ops/mariadb.sh stop "$dir/mariadb" >/dev/null || true
}
trap cleanup EXIT

"$shard" python - <<'PY'
import db, db_migrate
db.connect()
db_migrate.migrate()
# One region: the bots of both sols trade in the same books.
db.execute("INSERT IGNORE INTO regions (id, name) VALUES (10000001, 'Bench')")
for system, name, security in ((30000001, "Bench-A", 0.9), (30000002, "Bench-B", 0.5)):
    db.execute("INSERT INTO solar_systems (id, name, security, x, y, z, region_id) VALUES (?, ?, ?, 0, 0, 0, 10000001)"
               " ON DUPLICATE KEY UPDATE region_id = VALUES(region_id)", system, name, security)
db.close()
PY

cat >"$dir/prefs.ini" <<INI
[node]
log_level = info
io_threads = 1
[loop]
strategy = ${STRATEGY:-main_loop}
[cluster]
heartbeat_interval = 1
[sol]
port = $sol_port
[proxy]
address = 127.0.0.1
port = $port
tls_cert = $certs/dev.crt
tls_key = $certs/dev.key
login_timeout = 60
logins_per_address = 1000000
failures_per_account = 1000000
INI

start_node() {  # ROLE NAME ARGS...
  local role=$1 name=$2
  shift 2
  setsid "$shard" "$role" --config "$dir/prefs.ini" --node.name "$name" "$@" >"$dir/logs/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_${name//-/_}=$!"
}
start_node sol sol-a --sol.address 127.0.0.2 --sol.movement_update_interval "${MOVEMENT_INTERVAL:-1}"
start_node sol sol-b --sol.address 127.0.0.3 --sol.movement_update_interval "${MOVEMENT_INTERVAL:-1}"
start_node proxy proxy-a --node.io_threads "${PROXY_IO_THREADS:-1}"
for _ in $(seq 1 600); do
  (($(grep -c "ping over the link to sol" "$dir/logs/proxy-a.log" 2>/dev/null || true) >= 2)) && break
  sleep 0.1
done
grep -q "ping over the link to sol" "$dir/logs/proxy-a.log" || { echo "swarm_bench: the proxy never linked to the sols" >&2; exit 1; }

swarm=(python tools/client/swarm.py --port "$port" --ca "$certs/dev.crt" --prefix benchbot --bots "$bots"
       --password bench-password --ramp "$ramp" --timeout 60 --trade-types "${TRADE_TYPES:-20}")
# The accounts and characters, when some are missing (the database is kept between runs): the bots make
# their characters at their first login.
ready=$("$shard" python - "$bots" <<'PY'
import sys, db
db.connect()
names = ["benchbot%d" % i for i in range(int(sys.argv[1]))]
ready = 0
for start in range(0, len(names), 1000):
    chunk = names[start:start + 1000]
    ready += db.query("SELECT COUNT(DISTINCT a.id) FROM accounts a JOIN characters c ON c.account_id = a.id"
                      " WHERE a.name IN (%s)" % ",".join("?" * len(chunk)), *chunk)[0][0]
print(ready)
db.close()
PY
)
if ((ready < bots)); then
  echo "swarm_bench: accounts and characters for $bots bots ($ready ready; scrypt at ~50 ms per new account)" >&2
  "$shard" "${swarm[@]}" "${native[@]}" --create-accounts --create-parallel 4 --mix ping=0 --duration 0.1 --json /dev/null
fi

# The sols save a ship's position when its session leaves: let the first run's sessions end first.
sessions_ended
"$shard" python - "$bots" "$scenario" <<'PY'
import sys, db
db.connect()
bots, hub = int(sys.argv[1]), sys.argv[2] == "hub"
# K ships within 100 km of each: n ships in a cube of side L, n * (4/3 pi r^3) / L^3 = K. Spread: half the
# ships in each system (one per sol), K = 10; the hub: every ship in one system, K = 50.
per_system, near = (bots, 50) if hub else (bots / 2, 10)
side = (per_system * 4.18879e15 / near) ** (1 / 3)
db.execute("UPDATE ships s JOIN characters c ON c.id = s.owner_id JOIN accounts a ON a.id = c.account_id"
           " SET s.system_id = IF(s.id % 2 AND NOT ?, 30000002, 30000001), s.x = (RAND() - 0.5) * ?,"
           " s.y = (RAND() - 0.5) * ?, s.z = (RAND() - 0.5) * ? WHERE a.name LIKE 'benchbot%'", hub, side, side, side)
print("swarm_bench: ships in %s, scattered in a cube of %.0f km" % ("one system (the hub)" if hub else "two systems",
                                                                    side / 1000), file=sys.stderr)
db.close()
PY

"$shard" python tools/bench/market_audit.py snapshot "$dir/market-before.json"
rm -f "$dir/trades.jsonl"
"$shard" "${swarm[@]}" "${native[@]}" --mix "$mix" --duration "$seconds" --strategies "$strategies" \
  --watch "proxy=$pid_proxy_a,sol-a=$pid_sol_a,sol-b=$pid_sol_b,mariadb=$(cat "$dir/mariadb/mysqld.pid")" \
  --json "$dir/swarm.json" --png "$dir/swarm.png" \
  --trade-log "$dir/trades.jsonl"
# The books once the market is quiet: every session ended, then the trades the sols still ran settle.
sessions_ended
audit=0
"$shard" python tools/bench/market_audit.py check "$dir/market-before.json" --trade-log "$dir/trades.jsonl" \
  --json "$dir/audit.json" || audit=$?

python3 - "$dir/swarm.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
summary = {"bots": report["bots"], "connected": report["connected"], "mix": report["mix"],
           "swarm": {"max_rss_mib": round(report["max_rss_kib"] / 1024, 1), "rss_kib_per_bot": report["rss_kib_per_bot"]},
           "login_ms": {k: report["setup"].get("login", {}).get(k) for k in ("count", "errors", "p50_ms", "p99_ms", "max_ms")},
           "phases": []}
for phase in report["phases"]:
    row = {"strategy": phase["strategy"], "move_updates_per_s": phase["move_updates_per_s"],
           "moves_sent_per_s": phase["moves_sent_per_s"], "swarm_cpu_ms_per_bot_s": phase["swarm_cpu_ms_per_bot_s"],
           "nodes": phase["processes"]}
    for op in ("ping", "move_delivery", "chat", "trade"):
        h = phase["ops"].get(op)
        if h:
            row[op] = {k: h[k] for k in ("count", "errors", "p50_ms", "p99_ms", "max_ms")}
    summary["phases"].append(row)
print(json.dumps(summary, indent=1))
PY
echo "swarm_bench: report $dir/swarm.json, plot $dir/swarm.png, market audit $dir/audit.json" >&2
exit "$audit"
