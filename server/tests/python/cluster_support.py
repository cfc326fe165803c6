"""Real shard nodes for integration tests: a private database built by the
migrations (on ctest's `mariadb` fixture), a prefs.ini, `shard ROLE`
processes with their logs in files, and a game client on a plain socket that
speaks the wire by hand (docs/protocol.md).

Times are short (heartbeat 0.25 s) but the node timeout is 5 s (20 beats),
so a node stalled by a loaded 2-core machine is not taken for a dead one.
Every wait is bounded but generous, and a failed one shows every node's log
and the directory.

Under the default dispatch strategy (main_loop) each database statement a
node runs waits for its next frame (33 ms at the default 30 fps): a node's
start is a dozen statements, a market request as many. A module whose nodes
run many of them gives its Cluster {"loop": {"fps": 200}}, or its time goes
to waiting for frames.
"""

import os
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time

import accounts
import db
import db_migrate
import movement_pb2
import rpc_pb2
import rpc_values
import session_pb2
import support
from dbsupport import client_env, connect
from support import SHARD_BINARY, SuspectedDeadlock, run_in_tasklet

WAIT_S = 45.0  # a bound on each wait, never a pause: waits end as soon as their condition holds
CERTS = os.path.join(os.path.dirname(os.path.dirname(SHARD_BINARY)), "devcert")  # ops/devcert.sh, run by the build
CA = os.path.join(CERTS, "dev.crt")

HELLO, LOGIN, LOGIN_REPLY, RPC_CALL, RPC_REPLY, RPC_ERROR, NOTIFICATION, MOVEMENT, CLOSE = 1, 3, 4, 6, 7, 8, 9, 10, 12
HELLO_PAYLOAD = bytes([0x08, 0x01, 0x10, 0x01])  # Hello{min_version 1, max_version 1}: no codec, no TLS
NATIVE_HIGH = 0x04 | (2 << 3)  # frame flags: native, priority high
DEST_ENTITY = 4


def poll(predicate, what, timeout=WAIT_S):
    """predicate()'s first true value, polled every 50 ms (database reads and
    log files: no busier)."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise SuspectedDeadlock("suspected deadlock: %s not reached within %g s" % (what, timeout))
        time.sleep(0.05)


def _base_prefs(env, database):
    return {
        "node": {"io_threads": 1},
        "cluster": {"heartbeat_interval": 0.25, "node_timeout": 5},
        "db": {"host": env["SHARD_DB_HOST"], "port": env["SHARD_DB_PORT"], "user": env["SHARD_DB_USER"],
               "password_file": env["SHARD_DB_PASSWORD_FILE"], "database": database, "pool_size": 2},
        "sol": {"port": 0, "address": "127.0.0.1"},
        "proxy": {"port": 0, "address": "127.0.0.1", "routes_refresh": 0.25, "connect_timeout": 2,
                  "tls_cert": CA, "tls_key": os.path.join(CERTS, "dev.key")},
    }


class Cluster:
    """A test module's own database (`shard_test_*`: ops/mariadb.sh grants
    those to the test user), made from the migrations, and the prefs.ini its
    nodes read: the defaults above with `prefs` ({section: {key: value}})
    over them. set_up() in setUpModule, tear_down() in tearDownModule."""

    def __init__(self, database, prefs=None):
        assert database.startswith("shard_test_"), database
        self.database, self.prefs = database, prefs or {}
        self.dir = self.prefs_path = None
        self.nodes = []

    def set_up(self):
        support.setUpModule()
        connect(pool_size=2)
        db.execute("DROP DATABASE IF EXISTS " + self.database)
        db.execute("CREATE DATABASE %s CHARACTER SET utf8mb4" % self.database)
        db.close()
        connect(pool_size=2, database=self.database)
        db_migrate.migrate()
        self.dir = tempfile.TemporaryDirectory()
        sections = _base_prefs(client_env(), self.database)
        for section, values in self.prefs.items():
            sections.setdefault(section, {}).update(values)
        self.prefs_path = os.path.join(self.dir.name, "prefs.ini")
        with open(self.prefs_path, "w", encoding="utf-8") as f:
            for section, values in sections.items():
                f.write("[%s]\n%s" % (section, "".join("%s = %s\n" % kv for kv in values.items())))

    def tear_down(self):
        try:
            db.execute("DROP DATABASE IF EXISTS " + self.database)
        finally:
            db.close()
            self.dir.cleanup()
            support.tearDownModule()

    def reset_directory(self):
        """No nodes, no assignments: each test class starts its own."""
        db.execute("DELETE FROM system_assignments")
        db.execute("DELETE FROM cluster_nodes")

    def start(self, role, name, *args):
        node = Node(self, role, name, *args)
        self.nodes.append(node)
        return node

    def poll(self, predicate, what, timeout=WAIT_S):
        """poll(), failing with every node's Python stack and log, and the directory."""
        try:
            return poll(predicate, what, timeout)
        except SuspectedDeadlock as e:
            raise SuspectedDeadlock("%s\n%s" % (e, self.post_mortem())) from None

    def post_mortem(self):
        running = [n for n in self.nodes if n.proc.poll() is None]
        for node in running:
            node.signal(signal.SIGUSR1)  # node_main: faulthandler dumps its stack into its log
        if running:
            time.sleep(1)
        logs = "".join("\n--- %s (pid %d, %s):\n%s" % (n.name, n.proc.pid, "exit %s" % n.proc.returncode
                                                         if n.proc.poll() is not None else "running", n.log())
                       for n in self.nodes)
        nodes = db.query("SELECT id, name, pid, heartbeat_at, gone_at, gone_reason FROM cluster_nodes")
        assigned = db.query("SELECT system_id, node_id FROM system_assignments ORDER BY 1")
        return "directory: %r\nassigned: %r%s" % (nodes, assigned, logs)


def add_pilot(name, system, x=0.0):
    """An account NAME (password NAME-pw) with a character NAME whose ship
    is in `system` at (x, 0, 0): (character id, ship id)."""
    how, account = run_in_tasklet(accounts.create, name, name + "-pw")
    assert how == "ok", account
    character = db.execute("INSERT INTO characters (account_id, name) VALUES (?, ?)", account, name).lastrowid
    ship = db.execute("INSERT INTO ships (owner_id, type_id, system_id, x, y, z) VALUES (?, 1, ?, ?, 0, 0)",
                      character, system, x).lastrowid
    return character, ship


class Node:
    """A `shard ROLE` process with the cluster's prefs.ini (and `args` over
    it); its log in a file. The database settings come from the prefs only."""

    def __init__(self, cluster, role, name, *args):
        self.cluster, self.role, self.name = cluster, role, name
        self.log_path = os.path.join(cluster.dir.name, "%s-%d.log" % (name, time.monotonic_ns()))
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARD_DB_")}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([SHARD_BINARY, role, "--config", cluster.prefs_path, "--node.name", name]
                                         + list(args), stdout=log, stderr=subprocess.STDOUT, env=env)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_log(self, pattern):
        return self.cluster.poll(lambda: re.search(pattern, self.log()), "%s logging %r" % (self.name, pattern))

    def row(self):
        """Its row in the directory (named; None until it registered)."""
        rows = db.query("SELECT id, role, address, port, pid, gone_at, gone_reason FROM cluster_nodes"
                        " WHERE name = ? AND pid = ?", self.name, self.proc.pid, named=True)
        return rows[0] if rows else None

    def registered(self):
        """Its live row, once it registered; a node that exited first fails the wait at once."""
        def live_row():
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s:\n%s" % (self.name, self.proc.returncode, self.log()))
            row = self.row()
            return row if row and row["gone_at"] is None else None
        return self.cluster.poll(live_row, "%s registered" % self.name)

    def signal(self, signum):
        self.proc.send_signal(signum)

    def wait_exit(self):
        try:
            return self.proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            raise SuspectedDeadlock("suspected deadlock: %s did not exit\n%s"
                                    % (self.name, self.cluster.post_mortem())) from None

    def stop(self):
        """SIGTERM (a clean stop), SIGKILL if that takes longer than WAIT_S."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(WAIT_S)


class SolsAndProxy:
    """Two sols (sol-a, sol-b) that host every solar system of the database
    between them (both of them some; `placed(hosts)`, when given, must hold
    too), then a proxy linked to both, its client port as `.port`. `hosts`:
    {system: sol node id}."""

    def __init__(self, cluster, proxy_name, placed=None):
        cluster.reset_directory()
        self.sols = [cluster.start("sol", "sol-a"), cluster.start("sol", "sol-b")]
        self.ids = [sol.registered()["id"] for sol in self.sols]
        systems = {row[0] for row in db.query("SELECT id FROM solar_systems")}

        def spread():
            hosts = dict(db.query("SELECT system_id, node_id FROM system_assignments"))
            ok = set(hosts) == systems and set(hosts.values()) == set(self.ids) and (placed is None or placed(hosts))
            return hosts if ok else None
        self.hosts = cluster.poll(spread, "the solar systems hosted by both sols")
        self.proxy = cluster.start("proxy", proxy_name)
        self.port = self.proxy.registered()["port"]
        for node_id in self.ids:
            self.proxy.wait_log(r"ping over the link to sol %d" % node_id)

    def host(self, system):
        """(the sol Node hosting `system`, its node id)."""
        node_id = self.hosts[system]
        return self.sols[self.ids.index(node_id)], node_id

    def stop(self):
        self.proxy.stop()
        for sol in self.sols:
            sol.stop()


def frame(kind, payload, flags=0x18, dest_kind=0, target_id=0):
    """A wire frame: length, the 12-byte routing header, the payload (uncompressed)."""
    return (struct.pack("<IBBBBH", 12 + len(payload), 1, kind, flags, dest_kind, 0)
            + target_id.to_bytes(6, "little") + payload)


class Client:
    """A game client on a plain socket (the proxy with proxy.tls = off): the
    handshake, the login, RPC calls, notifications and movement frames, by
    hand. Movement updates and notifications that arrive meanwhile are kept."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        self.sock.sendall(frame(HELLO, HELLO_PAYLOAD))
        kind, _ = self.recv()
        assert kind == HELLO + 1, kind
        self.call_ids = iter(range(1, 1 << 30))
        self.moves = []  # the Movement updates received
        self.notifications = []  # the Notifications received

    def recv_exactly(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError("closed after %d of %d bytes" % (len(data), n))
            data += chunk
        return data

    def recv(self):
        body = self.recv_exactly(struct.unpack("<I", self.recv_exactly(4))[0])
        return body[1], body[12:]

    def login(self, name, password=None):
        """The LoginReply; a refusal fails the test. The password defaults to NAME-pw."""
        request = session_pb2.LoginRequest(user_name=name, credential=(password or name + "-pw").encode())
        self.sock.sendall(frame(LOGIN, request.SerializeToString()))
        kind, payload = self.recv()
        assert kind == LOGIN_REPLY, kind
        reply = session_pb2.LoginReply.FromString(payload)
        assert reply.ok, reply.reason
        return reply

    def _keep(self, kind, payload):
        if kind == MOVEMENT:
            self.moves.append(movement_pb2.Movement.FromString(payload))
        elif kind == NOTIFICATION:
            self.notifications.append(rpc_pb2.Notification.FromString(payload))
        else:
            raise AssertionError("unexpected kind %d" % kind)

    def call(self, service, method, *args):
        """(result, None) or (None, RpcError)."""
        call = rpc_pb2.RpcCall(call_id=next(self.call_ids), service=service, method=method, timeout_ms=10000)
        for arg in args:
            rpc_values.to_wire(arg, call.args.add())
        self.sock.sendall(frame(RPC_CALL, call.SerializeToString()))
        while True:
            kind, payload = self.recv()
            if kind == RPC_REPLY:
                return rpc_values.from_wire(rpc_pb2.RpcReply.FromString(payload).result), None
            if kind == RPC_ERROR:
                return None, rpc_pb2.RpcError.FromString(payload)
            self._keep(kind, payload)

    def move(self, ship, x, sequence):
        move = movement_pb2.Movement(entity_id=ship, x=x, y=0.0, z=0.0, vx=1.0, sequence=sequence)
        self.sock.sendall(frame(MOVEMENT, move.SerializeToString(), NATIVE_HIGH, DEST_ENTITY, ship))

    def next_move(self):
        while not self.moves:
            self._keep(*self.recv())
        return self.moves.pop(0)

    def next_notification(self):
        while not self.notifications:
            self._keep(*self.recv())
        return self.notifications.pop(0)

    def close(self):
        self.sock.close()
