#!/usr/bin/env bash
# The run command: installs what is missing, builds, and runs the shard.
# For now the shard is its engine: this runs the tasklet demo under `shard python`,
# then the game loop demo for a few seconds (`shard run`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash ops/setup.sh
bash ops/build.sh
echo "== build/bin/shard python scripts/demo_tasklets.py"
build/bin/shard python scripts/demo_tasklets.py
# The database demo against a private MariaDB (ops/mariadb.sh), stopped on exit.
trap 'bash ops/mariadb.sh stop build/mariadb >/dev/null || true' EXIT
bash ops/mariadb.sh start build/mariadb
set -a; source build/mariadb/client.env; set +a
echo "== build/bin/shard python scripts/demo_db.py"
build/bin/shard python scripts/demo_db.py
echo "== build/bin/shard run scripts/demo_loop.py   (stopped after 3 s with SIGINT)"
timeout -s INT 3 build/bin/shard run scripts/demo_loop.py || [ $? = 124 ]
cat <<'NEXT'

Next:
  build/bin/shard python                 an interactive interpreter with stackless
  build/bin/shard python your_script.py  run an existing Stackless Python 3 program
  build/bin/shard run scripts/demo_loop.py   the fixed-FPS game loop (Ctrl-C stops it); with build/mariadb's
                                         client.env sourced, on that database: change a live setting with
                                         REPLACE INTO settings (name, value) VALUES ('fps', '60')
  bash ops/test.sh                       run the tests
  bash ops/mariadb.sh start|stop|status  the private MariaDB (build/mariadb; settings in its client.env)
NEXT
