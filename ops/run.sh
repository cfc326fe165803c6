#!/usr/bin/env bash
# The run command: installs what is missing, builds, and runs a demo shard on
# this machine until Ctrl-C. See `ops/run.sh --help` and docs/deploying.md.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  cat <<'USAGE'
usage: ops/run.sh [--no-setup] [--build DIR] [--dir DIR] [--port N] [--sol-port N] [--password PW] [--bots N]

Runs a demo shard on this machine: installs the Debian packages that are
missing (ops/setup.sh) and builds (ops/build.sh), starts a private MariaDB
(ops/mariadb.sh, data under DIR), migrates it and loads the demo universe
(ops/demo/load.py: four solar systems in a ring of gates, the accounts
demo1..demo3 with a character each), then starts one proxy on 127.0.0.1 (TLS
on its client port, build/devcert) and two sols on 127.0.0.2 and 127.0.0.3,
separate processes with ops/demo/prefs.ini, and connects the bots
(tools/client/swarm.py). It prints
"ready", the demo accounts and how to connect the terminal client, and runs
until Ctrl-C (SIGINT) or SIGTERM: then it stops the bots (SIGINT: they write
their report, DIR/swarm.json), the nodes (SIGTERM: each leaves the cluster
directory), then MariaDB.

  --no-setup     skip ops/setup.sh and the build (BUILD/bin/shard must exist)
  --build DIR    the build tree whose shard and devcert/ run (default build; ops/build.sh makes build/)
  --dir DIR      the run's MariaDB, node logs and demo password (default build/run)
  --port N       the proxy's client port (default 26000)
  --sol-port N   the sols' node port, on each sol's own address (default 26001; 0: any free one)
  --password PW  the demo accounts' password (default: DIR/demo-password, made on the first run);
                 a command line shows in `ps`: for a demo only
  --bots N       bots to connect (tools/client/swarm.py; default 20; 0: none)

Exit status: 0 after a stop on request with every node stopped cleanly; 1 when
something failed to start, a node stopped on its own, or a node did not stop
cleanly; 2 for bad usage.
USAGE
}

setup=1 build=build dir=build/run port=26000 sol_port=26001 password="" bots=20
while (($#)); do
  case $1 in
    --help | -h) usage; exit 0 ;;
    --no-setup) setup=0; shift ;;
    --build | --dir | --port | --sol-port | --password | --bots)
      (($# >= 2)) || { echo "ops/run.sh: $1 needs a value" >&2; exit 2; }
      case $1 in
        --build) build=$2 ;; --dir) dir=$2 ;; --port) port=$2 ;; --sol-port) sol_port=$2 ;; --password) password=$2 ;; --bots) bots=$2 ;;
      esac
      shift 2 ;;
    *) echo "ops/run.sh: unknown argument '$1' (--help lists them)" >&2; exit 2 ;;
  esac
done
for number in "$port" "$sol_port" "$bots"; do
  [[ $number =~ ^[0-9]+$ ]] || { echo "ops/run.sh: '$number' is not a number" >&2; exit 2; }
done

shard=$build/bin/shard
certs=$build/devcert
if ((setup)); then
  bash ops/setup.sh
  SHARD_JOBS=${SHARD_JOBS:-$(nproc)} bash ops/build.sh
fi
[[ -x $shard ]] || { echo "ops/run.sh: no $shard: build first (ops/run.sh without --no-setup)" >&2; exit 1; }
bash ops/devcert.sh "$certs"
mkdir -p "$dir/logs"
dir=$(realpath "$dir")

declare -A nodes=()  # pid -> node name
swarm=""             # the bots' pid, while they run
status=0
alive() {  # PID: running (an exited child stays a zombie until waited for: kill -0 would say yes)
  local state
  read -r _ _ state _ 2>/dev/null <"/proc/$1/stat" && [[ $state != Z ]]
}
stop_all() {
  # The bots, then the nodes (each leaves the directory, which needs the
  # database), then MariaDB. Bounded: a process not gone within 30 s is killed.
  trap - INT TERM
  local pid
  if [[ -n $swarm ]]; then  # first, while the nodes still answer: SIGINT ends its phase and writes its report
    kill -INT "$swarm" 2>/dev/null || true
    for _ in $(seq 1 300); do alive "$swarm" || break; sleep 0.1; done
    alive "$swarm" && kill -KILL "$swarm" 2>/dev/null
    wait "$swarm" && echo "run: bots stopped (report: $dir/swarm.json)" ||
      echo "run: the bots exited with status $? (their log: $dir/logs/swarm.log)" >&2
    swarm=""
  fi
  for pid in "${!nodes[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${!nodes[@]}"; do
    for _ in $(seq 1 300); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      echo "run: ${nodes[$pid]} (pid $pid) did not stop within 30 s: killed" >&2
      kill -KILL "$pid" 2>/dev/null || true
      status=1
    fi
    if wait "$pid"; then
      echo "run: ${nodes[$pid]} stopped"
    else
      echo "run: ${nodes[$pid]} exited with status $? (its log: $dir/logs/${nodes[$pid]}.log)" >&2
      status=1
    fi
    unset "nodes[$pid]"
  done
  bash ops/mariadb.sh stop "$dir/mariadb" || status=1
}
# A failed command (set -e) keeps its status.
trap 'rc=$?; stop_all; ((status)) || status=$rc; exit "$status"' EXIT
# A signal ends the wait below; EXIT then stops everything.
trap 'requested=1' INT TERM
requested=0

bash ops/mariadb.sh start "$dir/mariadb"
set -a
# shellcheck source=/dev/null
source "$dir/mariadb/client.env"
set +a

if [[ -z $password ]]; then
  if [[ ! -s $dir/demo-password ]]; then
    (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(9))' >"$dir/demo-password")
  fi
  password=$(cat "$dir/demo-password")
fi
printf '%s\n' "$password" | "$shard" python ops/demo/load.py

start_node() {  # ROLE NAME ARGS...: a node in the background, its log in DIR/logs/NAME.log
  local role=$1 name=$2
  shift 2
  # setsid: out of the terminal's process group, so that Ctrl-C reaches this
  # script only and each node gets exactly one signal, the SIGTERM of
  # stop_all (a second one during its stop would kill it mid-way).
  setsid "$shard" "$role" --config ops/demo/prefs.ini --node.name "$name" "$@" >"$dir/logs/$name.log" 2>&1 &
  nodes[$!]=$name
  echo "run: started $name (pid $!, log $dir/logs/$name.log)"
}
start_node sol sol-1 --sol.address 127.0.0.2 --sol.port "$sol_port"
start_node sol sol-2 --sol.address 127.0.0.3 --sol.port "$sol_port"
start_node proxy proxy-1 --proxy.address 127.0.0.1 --proxy.port "$port" \
  --proxy.tls_cert "$certs/dev.crt" --proxy.tls_key "$certs/dev.key"

node_down() {  # the name of a node that exited, if one did
  local pid
  for pid in "${!nodes[@]}"; do alive "$pid" || { echo "${nodes[$pid]}"; return 0; }; done
  return 1
}
ready() {  # the proxy linked to both sols, and routes systems to each
  local log=$dir/logs/proxy-1.log
  grep -q "ping over the link to sol [0-9]* (sol-1) .*answered" "$log" &&
    grep -q "ping over the link to sol [0-9]* (sol-2) .*answered" "$log" &&
    grep "routes: " "$log" | tail -1 | grep "(sol-1) [1-9][0-9]* systems" | grep -q "(sol-2) [1-9][0-9]* systems"
}
for _ in $(seq 1 600); do  # a few seconds; a minute on a loaded machine
  ((requested)) && exit 0
  if down=$(node_down); then
    tail -20 "$dir/logs/$down.log" >&2
    echo "run: $down stopped while starting (above: the end of its log)" >&2
    status=1
    exit 1
  fi
  ready && break
  sleep 0.1
done
ready || { echo "run: the cluster was not ready within 60 s (logs in $dir/logs)" >&2; status=1; exit 1; }

# The bots: tools/client/swarm.py (its README), until
# Ctrl-C, as accounts bot0..bot(N-1) with the demo password (created on first
# use). Not part of the cluster: a swarm that stops is reported, the shard
# goes on.
swarm=""
if ((bots)); then
  setsid "$shard" python tools/client/swarm.py --host 127.0.0.1 --port "$port" --ca "$certs/dev.crt" \
    --bots "$bots" --prefix bot --password "$password" --create-accounts --duration 0 \
    --json "$dir/swarm.json" >"$dir/logs/swarm.log" 2>&1 &
  swarm=$!
  echo "run: started $bots bots (pid $swarm, log $dir/logs/swarm.log)"
fi

cat <<READY

ready: proxy 127.0.0.1:$port (TLS), sols on 127.0.0.2 and 127.0.0.3, MariaDB $SHARD_DB_HOST:$SHARD_DB_PORT
  demo accounts: demo1, demo2, demo3, password: $password
  the terminal client:
    /usr/bin/python3.11 tools/client/terminal.py --host 127.0.0.1 --port $port --ca $certs/dev.crt
  node logs: $dir/logs/   the database: set -a; . $dir/mariadb/client.env; set +a
  Ctrl-C stops everything.
READY

# Until a signal (requested) or a node stopping on its own.
while ((!requested)); do
  if down=$(node_down); then
    echo "run: $down stopped on its own (its log: $dir/logs/$down.log); stopping everything" >&2
    status=1
    break
  fi
  if [[ -n $swarm ]] && ! alive "$swarm"; then
    wait "$swarm" || true
    echo "run: the bots stopped on their own (their log: $dir/logs/swarm.log); the shard goes on" >&2
    swarm=""
  fi
  sleep 0.5 &
  wait $! || true
done
echo "run: stopping"
