#!/usr/bin/env bash
# A private MariaDB for development and the tests: its own data directory,
# 127.0.0.1 on a free port of its own plus a socket, run as the current user.
#
#   bash ops/mariadb.sh start|stop|status|restart [DIR]    (DIR: build/mariadb)
#
# Idempotent: start on a running server and stop on a stopped one do nothing.
# start creates, on first use, the database `shard` and the user `shard` whose
# password is in DIR/password; the client settings are in DIR/client.env
# (SHARD_DB_HOST, _PORT, _SOCKET, _USER, _PASSWORD_FILE, _DATABASE), the same
# names a production node reads (docs/database.md). The server accepts TLS
# too, with a certificate DIR/tls/ca.pem verifies (SHARD_DB_SSL_CA).
#
# --no-defaults must come first on every server command: without it Debian's
# /etc/mysql is read. As root, mariadbd refuses to start without --user=root.
set -euo pipefail
cd "$(dirname "$0")/.."
command=${1:-}
dir=$(realpath -m "${2:-build/mariadb}")
data=$dir/data
sock=$dir/mysqld.sock
pidfile=$dir/mysqld.pid
log=$dir/error.log
user=$(id -un)

running() {
  [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

admin() {  # the OS user's own account, by unix_socket authentication
  mariadb --no-defaults --socket="$sock" --user="$user" "$@"
}

free_port() {  # the last start's port if it is still free (a restart keeps it), else a new one
  python3 - "$(cat "$dir/port" 2>/dev/null || echo 0)" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
}

tls_files() {  # a CA and its server certificate for 127.0.0.1 and localhost, made once (DIR/tls/ca.pem verifies it)
  local tls=$dir/tls
  [[ -f $tls/server-cert.pem ]] && return 0
  mkdir -p "$tls"
  (
    cd "$tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=shard test CA" \
      -keyout ca-key.pem -out ca.pem
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
      -keyout server-key.pem -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 -extfile server.ext \
      -out server-cert.pem.new
    mv server-cert.pem.new server-cert.pem
  ) >"$dir/tls.log" 2>&1 || { cat "$dir/tls.log" >&2; echo "mariadb: making the TLS certificates failed" >&2; exit 1; }
}

start() {
  if running; then
    echo "mariadb: running (pid $(cat "$pidfile"), port $(cat "$dir/port"))"
    return 0
  fi
  # Its own temporary directory: /tmp is shared with every other server and
  # test on the machine (a bootstrap once failed on a temporary table's file
  # that vanished from /tmp under it).
  mkdir -p "$dir/tmp"
  if [[ ! -d $data/mysql ]]; then
    rm -rf "$data"
    mariadb-install-db --no-defaults --user="$user" --datadir="$data" --tmpdir="$dir/tmp" \
      --auth-root-authentication-method=socket --skip-test-db --skip-name-resolve >"$dir/install.log" 2>&1 ||
      { cat "$dir/install.log" >&2; echo "mariadb: mariadb-install-db failed" >&2; exit 1; }
  fi
  # A port of its own: builds, worktrees and other users' servers share the
  # machine.
  tls_files
  port=$(free_port)
  echo "$port" >"$dir/port"
  mariadbd --no-defaults --user="$user" --datadir="$data" --tmpdir="$dir/tmp" --bind-address=127.0.0.1 --port="$port" \
    --socket="$sock" --pid-file="$pidfile" --log-error="$log" --skip-log-bin --max-connections=200 \
    --ssl-ca="$dir/tls/ca.pem" --ssl-cert="$dir/tls/server-cert.pem" --ssl-key="$dir/tls/server-key.pem" \
    </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 150); do  # ready in ~0.5 s; 15 s under a loaded machine
    if admin -e "SELECT 1" >/dev/null 2>&1; then break; fi
    sleep 0.1
  done
  admin -e "SELECT 1" >/dev/null 2>&1 || { tail -20 "$log" >&2; echo "mariadb: did not start" >&2; exit 1; }
  if [[ ! -f $dir/password ]]; then
    # Alphanumeric: it travels in SQL below (this script's own, never user input).
    python3 -c 'import secrets; print(secrets.token_hex(16))' >"$dir/password"
    chmod 600 "$dir/password"
  fi
  password=$(cat "$dir/password")
  admin <<SQL
CREATE DATABASE IF NOT EXISTS shard;
CREATE USER IF NOT EXISTS 'shard'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS 'shard'@'localhost' IDENTIFIED BY '$password';
GRANT ALL ON shard.* TO 'shard'@'127.0.0.1';
GRANT ALL ON shard.* TO 'shard'@'localhost';
-- the tests' own databases (migrations from empty, one per test)
GRANT ALL ON \`shard\_test\_%\`.* TO 'shard'@'127.0.0.1';
GRANT ALL ON \`shard\_test\_%\`.* TO 'shard'@'localhost';
SQL
  cat >"$dir/client.env" <<ENV
SHARD_DB_HOST=127.0.0.1
SHARD_DB_PORT=$port
SHARD_DB_SOCKET=$sock
SHARD_DB_USER=shard
SHARD_DB_PASSWORD_FILE=$dir/password
SHARD_DB_DATABASE=shard
ENV
  echo "mariadb: started (pid $(cat "$pidfile"), 127.0.0.1:$port, $sock)"
}

stop() {
  if ! running; then
    echo "mariadb: not running"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid"  # a clean shutdown: mariadbd flushes and exits on SIGTERM
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || { echo "mariadb: stopped"; return 0; }
    sleep 0.1
  done
  echo "mariadb: pid $pid did not stop within 30 s" >&2
  exit 1
}

case $command in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status)
    if running; then echo "mariadb: running (pid $(cat "$pidfile"), port $(cat "$dir/port"))"; else echo "mariadb: not running"; exit 3; fi
    ;;
  *) echo "usage: ops/mariadb.sh start|stop|status|restart [DIR]" >&2; exit 2 ;;
esac
