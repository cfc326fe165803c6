"""Sessions across the cluster with real processes: a `shard sol` and a
`shard proxy` against the private MariaDB (ctest's `mariadb` fixture), and
game clients speaking the wire by hand on plain sockets (the proxy with
proxy.tls = off): a session that selects a character is announced to the sol
of its ship's solar system (SessionChange), its RPC calls are relayed there
with the session's role, its ship's moves reach the other session in the
system end to end, and its end reaches the sol. Every wait is bounded."""

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "engine", "tests", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "db", "tests", "python"))

import accounts  # noqa: E402
import client_sessions  # noqa: E402
import db  # noqa: E402
import db_migrate  # noqa: E402
import movement_pb2  # noqa: E402
import rpc_errors  # noqa: E402
import rpc_pb2  # noqa: E402
import rpc_values  # noqa: E402
import session_pb2  # noqa: E402
import support  # noqa: E402
from dbsupport import client_env, connect  # noqa: E402
from support import SHARD_BINARY, StacklessTestCase, SuspectedDeadlock, run_in_tasklet  # noqa: E402

DATABASE = "shard_test_sessions"
SYSTEM, OTHER_SYSTEM = 30000001, 30000002  # split over the two sols
HELLO, LOGIN, LOGIN_REPLY, RPC_CALL, RPC_REPLY, RPC_ERROR, MOVEMENT = 1, 3, 4, 6, 7, 8, 10
HELLO_PAYLOAD = bytes([0x08, 0x01, 0x10, 0x01])  # Hello{min_version 1, max_version 1}: no codec, no TLS
NATIVE_HIGH = 0x04 | (2 << 3)   # frame flags: native, priority high
DEST_ENTITY = 4
WAIT_S = 45.0  # a bound on each wait, never a pause
USERS = ("alice", "bob")

_state = {}


def setUpModule():
    support.setUpModule()
    connect(pool_size=2)
    db.execute("DROP DATABASE IF EXISTS " + DATABASE)
    db.execute("CREATE DATABASE %s CHARACTER SET utf8mb4" % DATABASE)
    db.close()
    connect(pool_size=2, database=DATABASE)
    db_migrate.migrate()
    for system in (SYSTEM, OTHER_SYSTEM):
        db.execute("INSERT INTO solar_systems (id, name, security, x, y, z) VALUES (?, ?, 0.5, 0, 0, 0)",
                   system, "S-%d" % system)
    accounts_ = {}
    for name in USERS:
        how, accounts_[name] = run_in_tasklet(accounts.create, name, name + "-pw")
        assert how == "ok", accounts_[name]
    # (character, account, system, x): alice and bob 100 m apart, alice's second far away on the other sol.
    for i, (character, owner, system) in enumerate((("alice", "alice", SYSTEM), ("bob", "bob", SYSTEM),
                                                    ("alice2", "alice", OTHER_SYSTEM))):
        db.execute("INSERT INTO characters (account_id, name) VALUES (?, ?)", accounts_[owner], character)
        character_id = db.query("SELECT id FROM characters WHERE name = ?", character)[0][0]
        db.execute("INSERT INTO ships (owner_id, type_id, system_id, x, y, z) VALUES (?, 1, ?, ?, 0, 0)",
                   character_id, system, 100.0 * i)
        ship = db.query("SELECT id FROM ships WHERE owner_id = ?", character_id)[0][0]
        _state[character] = (character_id, ship)
    _state["dir"] = tempfile.TemporaryDirectory()
    env = client_env()
    _state["prefs"] = os.path.join(_state["dir"].name, "prefs.ini")
    with open(_state["prefs"], "w", encoding="utf-8") as f:
        f.write("[node]\nio_threads = 1\n"
                "[cluster]\nheartbeat_interval = 0.25\nnode_timeout = 5\n"
                "[db]\nhost = %s\nport = %s\nuser = %s\npassword_file = %s\ndatabase = %s\npool_size = 2\n"
                "[sol]\nport = 0\naddress = 127.0.0.1\n"
                "[proxy]\nport = 0\naddress = 127.0.0.1\nroutes_refresh = 0.25\nconnect_timeout = 2\ntls = off\n"
                % (env["SHARD_DB_HOST"], env["SHARD_DB_PORT"], env["SHARD_DB_USER"], env["SHARD_DB_PASSWORD_FILE"],
                   DATABASE))


def tearDownModule():
    try:
        db.execute("DROP DATABASE IF EXISTS " + DATABASE)
    finally:
        db.close()
        _state.pop("dir").cleanup()
        support.tearDownModule()


def poll(predicate, what):
    end = time.monotonic() + WAIT_S
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise SuspectedDeadlock("suspected deadlock: %s not reached within %g s" % (what, WAIT_S))
        time.sleep(0.05)


class Node:
    """A `shard ROLE` process; its log in a file."""

    def __init__(self, role, name):
        self.name = name
        self.log_path = os.path.join(_state["dir"].name, "%s.log" % name)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SHARD_DB_")}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([SHARD_BINARY, role, "--config", _state["prefs"], "--node.name", name],
                                         stdout=log, stderr=subprocess.STDOUT, env=env)

    def log(self):
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def wait_log(self, pattern):
        try:
            return poll(lambda: re.search(pattern, self.log()), "%s logging %r" % (self.name, pattern))
        except SuspectedDeadlock as e:
            raise SuspectedDeadlock("%s\n--- %s log:\n%s" % (e, self.name, self.log())) from None

    def row(self):
        rows = db.query("SELECT id, port FROM cluster_nodes WHERE name = ? AND pid = ? AND gone_at IS NULL",
                        self.name, self.proc.pid)
        if self.proc.poll() is not None:
            raise AssertionError("%s exited with %s:\n%s" % (self.name, self.proc.returncode, self.log()))
        return rows[0] if rows else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(WAIT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT_S)


def frame(kind, payload, flags=0x18, dest_kind=0, target_id=0):
    return (struct.pack("<IBBBBH", 12 + len(payload), 1, kind, flags, dest_kind, 0)
            + target_id.to_bytes(6, "little") + payload)


class Client:
    """A game client on a plain socket: the handshake, the login, RPC calls
    and movement frames, by hand."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT_S)
        self.sock.sendall(frame(HELLO, HELLO_PAYLOAD))
        kind, _ = self.recv()
        assert kind == HELLO + 1, kind
        self.call_ids = iter(range(1, 1 << 30))
        self.moves = []  # the Movement updates received

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

    def login(self, name):
        request = session_pb2.LoginRequest(user_name=name, credential=(name + "-pw").encode())
        self.sock.sendall(frame(LOGIN, request.SerializeToString()))
        kind, payload = self.recv()
        assert kind == LOGIN_REPLY, kind
        reply = session_pb2.LoginReply.FromString(payload)
        assert reply.ok, reply.reason
        return reply

    def call(self, service, method, *args):
        """(result, None) or (None, RpcError); Movement updates meanwhile are kept."""
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
            if kind == MOVEMENT:
                self.moves.append(movement_pb2.Movement.FromString(payload))
            else:
                raise AssertionError("unexpected kind %d" % kind)

    def move(self, ship, x, sequence):
        move = movement_pb2.Movement(entity_id=ship, x=x, y=0.0, z=0.0, vx=1.0, sequence=sequence)
        self.sock.sendall(frame(MOVEMENT, move.SerializeToString(), NATIVE_HIGH, DEST_ENTITY, ship))

    def next_move(self):
        while not self.moves:
            kind, payload = self.recv()
            if kind == MOVEMENT:
                self.moves.append(movement_pb2.Movement.FromString(payload))
        return self.moves.pop(0)

    def close(self):
        self.sock.close()


def _split(ids):
    """{system: node} once the two systems are on two different live sols."""
    hosts = dict(db.query("SELECT system_id, node_id FROM system_assignments"))
    return hosts if set(hosts.values()) == set(ids) and len(hosts) == 2 else None


class SessionsTest(StacklessTestCase):
    deadline_s = 180

    @classmethod
    def setUpClass(cls):
        db.execute("DELETE FROM system_assignments")
        db.execute("DELETE FROM cluster_nodes")
        cls.sols = [Node("sol", "sol-a"), Node("sol", "sol-b")]
        ids = [poll(sol.row, "%s registered" % sol.name)[0] for sol in cls.sols]
        hosts = poll(lambda: _split(ids), "one system on each sol")
        cls.sol, cls.sol_id = cls.sols[ids.index(hosts[SYSTEM])], hosts[SYSTEM]
        cls.other_sol, cls.other_sol_id = cls.sols[ids.index(hosts[OTHER_SYSTEM])], hosts[OTHER_SYSTEM]
        cls.proxy = Node("proxy", "proxy-s")
        cls.port = poll(cls.proxy.row, "the proxy registered")[1]
        for node_id in ids:
            cls.proxy.wait_log(r"ping over the link to sol %d" % node_id)

    @classmethod
    def tearDownClass(cls):
        cls.proxy.stop()
        for sol in cls.sols:
            sol.stop()

    def client(self, name):
        client = Client(self.port)
        self.addCleanup(client.close)
        return client, client.login(name)

    def test_a_selected_character_takes_the_session_to_its_sol_and_calls_follow(self):
        client, reply = self.client("alice")
        character, ship = _state["alice"]
        result, error = client.call("ping", "ping", "before")
        self.assertIsNone(result)
        self.assertEqual(error.kind, rpc_pb2.RpcError.UNAVAILABLE)
        self.assertIn("select a character first", error.message)

        attributes, error = client.call("session", "select_character", character)
        self.assertIsNone(error)
        self.assertEqual((attributes["character_id"], attributes["ship_id"], attributes["solar_system_id"]),
                         (character, ship, SYSTEM))
        self.sol.wait_log(r"session %d arrived from proxy" % reply.session_id)

        result, error = client.call("ping", "ping", "hello")
        self.assertIsNone(error)
        self.assertEqual((result["node_id"], result["echo"]), (self.sol_id, "hello"))
        _, error = client.call("ping", "nope")
        self.assertEqual(error.kind, rpc_pb2.RpcError.NO_SUCH_METHOD)  # the sol's answer, relayed with its kind
        _, error = client.call("sessions", "call", reply.session_id, "ping", "ping", [], {})
        self.assertEqual(error.kind, rpc_pb2.RpcError.NOT_ALLOWED)  # a player is no node
        _, error = client.call("session", "select_character", _state["bob"][0])
        self.assertEqual((error.kind, error.type), (rpc_pb2.RpcError.APPLICATION, "LookupError"))

        client.close()
        self.sol.wait_log(r"session %d left this sol: ended" % reply.session_id)

    def test_another_character_in_a_system_on_another_sol_moves_the_session_there(self):
        client, reply = self.client("alice")
        _, error = client.call("session", "select_character", _state["alice"][0])
        self.assertIsNone(error)
        self.assertEqual(client.call("ping", "ping")[0]["node_id"], self.sol_id)
        attributes, error = client.call("session", "select_character", _state["alice2"][0])
        self.assertIsNone(error)
        self.assertEqual(attributes["solar_system_id"], OTHER_SYSTEM)
        self.sol.wait_log(r"session %d left this sol: moved to sol %d" % (reply.session_id, self.other_sol_id))
        self.other_sol.wait_log(r"session %d arrived from proxy" % reply.session_id)
        # The very next call goes to the new sol: the routing moved with the change.
        self.assertEqual(client.call("ping", "ping")[0]["node_id"], self.other_sol_id)
        client.close()
        self.other_sol.wait_log(r"session %d left this sol: ended" % reply.session_id)

    def test_two_sessions_in_one_system_see_each_others_moves(self):
        clients = {}
        for name in USERS:
            client, reply = self.client(name)
            _, error = client.call("session", "select_character", _state[name][0])
            self.assertIsNone(error)
            self.sol.wait_log(r"session %d arrived from proxy" % reply.session_id)
            clients[name] = client
        alice, bob = clients["alice"], clients["bob"]
        alice_ship, bob_ship = _state["alice"][1], _state["bob"][1]
        alice.move(alice_ship, 0.5, 1)
        seen = bob.next_move()
        self.assertEqual((seen.entity_id, seen.x, seen.sequence), (alice_ship, 0.5, 1))
        bob.move(bob_ship, 100.5, 1)
        seen = alice.next_move()
        self.assertEqual((seen.entity_id, seen.x, seen.sequence), (bob_ship, 100.5, 1))
        # Moving another's ship is cut off at the proxy.
        alice.move(bob_ship, 101.0, 2)
        with self.assertRaises((EOFError, ConnectionError)):
            while True:
                alice.recv()


class ChangeTest(StacklessTestCase):

    def test_a_session_that_ended_while_its_change_was_read_is_not_routed(self):
        # select_character waits on the database: the session may end meanwhile.
        sessions = client_sessions.ClientSessions(1, None)
        session = client_sessions.Session(7, 1, "alice", "127.0.0.1", None)
        session.ended = "connection closed"
        with self.assertRaisesRegex(rpc_errors.Unavailable, "ended: connection closed"):
            sessions.change(session, {"solar_system_id": SYSTEM})
        self.assertIsNone(session.sol_node)
        self.assertIsNone(session.attributes["solar_system_id"])


if __name__ == "__main__":
    unittest.main()
