#!/usr/bin/env bash
# What the MariaDB server does per query for one client of the database
# benchmark (docs/benchmarks.md, "The database"): runs CLIENT... against the
# server in SERVER_DIR (ops/mariadb.sh's, e.g. build/mariadb-bench while
# run_db_bench.sh's server is up, or one started by hand) and prints, per
# COM_STMT_EXECUTE over a window of SECONDS that starts WARMUP seconds in,
# every SHOW GLOBAL STATUS counter that moved (what went over the wire and
# what the server did with it), mariadbd's run time from
# /proc/PID/task/*/schedstat (exact nanoseconds, not scheduler ticks) and its
# threads' voluntary and involuntary context switches.
#
#   tools/bench/db_server_cost.sh SERVER_DIR WARMUP SECONDS CLIENT...
#   e.g. tools/bench/db_server_cost.sh build/mariadb-bench 1.5 2 build/bin/db_select_loop build/mariadb-bench 4 4 10000
set -euo pipefail
(($# >= 4)) || { echo "usage: $0 SERVER_DIR WARMUP SECONDS CLIENT..." >&2; exit 2; }
dir=$1 warmup=$2 seconds=$3
shift 3
pid=$(cat "$dir/mysqld.pid")
snap() {  # STATUS lines, then "schedstat NS", "switches VOLUNTARY INVOLUNTARY"
  mariadb --no-defaults --socket="$dir/mysqld.sock" --user="$(id -un)" -N -e "SHOW GLOBAL STATUS"
  cat /proc/"$pid"/task/*/schedstat | awk '{ns += $1} END {print "schedstat\t" ns}'
  cat /proc/"$pid"/task/*/status | awk '/^voluntary/ {v += $2} /^nonvoluntary/ {n += $2} END {print "switches\t" v "\t" n}'
}
before=$(mktemp) after=$(mktemp)
trap 'rm -f "$before" "$after"' EXIT
"$@" >&2 &
client=$!
sleep "$warmup"
snap >"$before"
sleep "$seconds"
snap >"$after"
wait "$client"
python3 - "$before" "$after" <<'EOF'
import sys

def load(path):
    values = {}
    for line in open(path):
        fields = line.rstrip("\n").split("\t")
        try:
            values[fields[0]] = [float(f) for f in fields[1:]]
        except ValueError:
            pass  # a text-valued status variable
    return values

a, b = load(sys.argv[1]), load(sys.argv[2])
n = b["Com_stmt_execute"][0] - a["Com_stmt_execute"][0]
print(f"{n:.0f} executes; per execute:")
skip = ("Uptime", "Memory_used", "Innodb_buffer_pool_pages", "Max_used", "Innodb_mem", "Threads_", "Open")
for name in sorted(a):
    if name in ("schedstat", "switches") or name.startswith(skip) or name not in b:
        continue
    delta = (b[name][0] - a[name][0]) / n
    if abs(delta) >= 0.001:
        print(f"  {name}: {delta:.3f}")
print(f"  mariadbd run time: {(b['schedstat'][0] - a['schedstat'][0]) / 1e3 / n:.1f} us")
print(f"  mariadbd context switches: {(b['switches'][0] - a['switches'][0]) / n:.3f} voluntary, "
      f"{(b['switches'][1] - a['switches'][1]) / n:.3f} involuntary")
EOF
