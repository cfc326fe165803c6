"""Sessions across the cluster with real processes: a `shard sol` and a
`shard proxy` against the private MariaDB (ctest's `mariadb` fixture), and
game clients speaking the wire by hand on plain sockets (the proxy with
proxy.tls = off): a session that selects a character is announced to the sol
of its ship's solar system (SessionChange), its RPC calls are relayed there
with the session's role, its ship's moves reach the other session in the
system end to end, and its end reaches the sol. Every wait is bounded."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "engine", "tests", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "db", "tests", "python"))

import accounts  # noqa: E402
import client_sessions  # noqa: E402
import db  # noqa: E402
import rpc_errors  # noqa: E402
import rpc_pb2  # noqa: E402
import rpc_services  # noqa: E402
import sol_sessions  # noqa: E402
import movement_pb2  # noqa: E402
from cluster_support import DEST_ENTITY, MOVEMENT, NATIVE_HIGH, Client, Cluster, SolsAndProxy, frame  # noqa: E402
from dbsupport import run_tasklets  # noqa: E402
from support import StacklessTestCase, run_in_tasklet  # noqa: E402

SYSTEM, OTHER_SYSTEM = 30000001, 30000002  # split over the two sols
USERS = ("alice", "bob")

cluster = Cluster("shard_test_sessions", {"proxy": {"tls": "off"}})
_state = {}


def setUpModule():
    cluster.set_up()
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


def tearDownModule():
    cluster.tear_down()


class SessionsTest(StacklessTestCase):
    deadline_s = 180

    @classmethod
    def setUpClass(cls):
        cls.nodes = SolsAndProxy(cluster, "proxy-s")
        cls.sols, cls.proxy, cls.port = cls.nodes.sols, cls.nodes.proxy, cls.nodes.port
        cls.sol, cls.sol_id = cls.nodes.host(SYSTEM)
        cls.other_sol, cls.other_sol_id = cls.nodes.host(OTHER_SYSTEM)

    @classmethod
    def tearDownClass(cls):
        cls.nodes.stop()

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

        attributes, error = client.call("characters", "select", character)
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
        _, error = client.call("characters", "select", _state["bob"][0])
        self.assertEqual((error.kind, error.type), (rpc_pb2.RpcError.APPLICATION, "LookupError"))

        client.close()
        self.sol.wait_log(r"session %d left this sol: ended" % reply.session_id)

    def test_another_character_in_a_system_on_another_sol_moves_the_session_there(self):
        client, reply = self.client("alice")
        _, error = client.call("characters", "select", _state["alice"][0])
        self.assertIsNone(error)
        self.assertEqual(client.call("ping", "ping")[0]["node_id"], self.sol_id)
        attributes, error = client.call("characters", "select", _state["alice2"][0])
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
            _, error = client.call("characters", "select", _state[name][0])
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


    def test_a_move_the_sol_refuses_costs_its_sender_the_move_not_everyone_the_proxys_link(self):
        # Both sessions reach the sol on the proxy's one link. A client's move
        # over the speed limit used to close that link (every session of the
        # proxy cut); now the move is dropped and its ship leaves space.
        clients, replies = {}, {}
        for name in USERS:
            clients[name], replies[name] = self.client(name)
            _, error = clients[name].call("characters", "select", _state[name][0])
            self.assertIsNone(error)
            self.sol.wait_log(r"session %d arrived from proxy" % replies[name].session_id)
        alice, bob = clients["alice"], clients["bob"]
        alice_ship = _state["alice"][1]
        # Three in one write: one sanction and one line for the ship, not a warning per refused move.
        alice.sock.sendall(b"".join(
            frame(MOVEMENT, movement_pb2.Movement(entity_id=alice_ship, vx=1e7, sequence=n).SerializeToString(),
                  NATIVE_HIGH, DEST_ENTITY, alice_ship) for n in (1, 2, 3)))
        self.sol.wait_log(r"session %d \(proxy \d+\): 3 move\(s\) refused \(entity %d: speed [0-9.]+ m/s over "
                          r"the limit" % (replies["alice"].session_id, alice_ship))
        # The offender's session is ended by its proxy, with the reason, as a
        # direct client of the sol would be closed.
        self.proxy.wait_log(r"ended: movement refused: entity %d: speed" % alice_ship)
        with self.assertRaises((EOFError, ConnectionError)):
            while True:
                alice.recv()
        # The link is up: the other session's calls still reach the sol over it.
        result, error = bob.call("ping", "ping")
        self.assertIsNone(error)
        self.assertEqual(result["node_id"], self.sol_id)
        self.assertNotIn("its proxy's link closed", self.sol.log())
        self.assertNotIn("no session moves it here any more", self.sol.log())


class ChangeTest(StacklessTestCase):

    def test_a_session_that_ended_while_its_change_was_read_is_not_routed(self):
        # characters.select waits on the database: the session may end meanwhile.
        sessions = client_sessions.ClientSessions(1, None)
        session = client_sessions.Session(7, 1, "alice", "127.0.0.1", None)
        session.ended = "connection closed"
        with self.assertRaisesRegex(rpc_errors.Unavailable, "ended: connection closed"):
            sessions.change(session, {"solar_system_id": SYSTEM})
        self.assertIsNone(session.sol_node)
        self.assertIsNone(session.attributes["solar_system_id"])


class SessionRowTest(StacklessTestCase):

    def test_concurrent_logins_of_different_accounts_do_not_deadlock(self):
        # Two logins' transactions interleave on the pool's connections; a
        # locking read of an absent row (a gap lock) before the insert made
        # them deadlock (MariaDB error 1213, seen with swarms of bots).
        node_id = db.execute("INSERT INTO cluster_nodes (name, role, address, pid) VALUES ('row-test', 'proxy',"
                             " '127.0.0.1', 1)").lastrowid
        accounts_ = [db.execute("INSERT INTO accounts (name, password_hash) VALUES (?, 'x')",
                                "rowtest%d" % i).lastrowid for i in range(8)]

        def clean_up():
            db.execute("DELETE FROM client_sessions WHERE proxy_node_id = ?", node_id)
            db.execute("DELETE FROM accounts WHERE name LIKE 'rowtest%'")
            db.execute("DELETE FROM cluster_nodes WHERE id = ?", node_id)
        self.addCleanup(clean_up)
        sessions = client_sessions.ClientSessions(node_id, None)
        results = run_tasklets(*[lambda a=a: sessions.begin(a, "rowtest", "127.0.0.1", None) for a in accounts_])
        self.assertEqual([r for r in results if isinstance(r, BaseException)], [])
        self.assertEqual(db.query("SELECT COUNT(*) FROM client_sessions WHERE proxy_node_id = ?", node_id), [(8,)])


class Whoami:
    service_name = "whoami"

    @rpc_services.exposed(role="player")
    def who(self):
        session = sol_sessions.current()
        return [session.session_id, session.attributes["character_id"]]


class CurrentSessionTest(StacklessTestCase):

    def test_a_relayed_call_sees_its_session_and_nothing_else_does(self):
        services = rpc_services.Services()
        services.register(Whoami())
        sessions = sol_sessions.SolSessions(services, lambda: 1)
        for session_id, character in ((7, 70), (8, 80)):
            session = sol_sessions.SolSession(session_id, 2, None)
            session.attributes.update(role="player", character_id=character)
            sessions.by_id[session_id] = session
        self.assertEqual(sessions.call(7, "whoami", "who", [], {}), [7, 70])
        self.assertEqual(sessions.call(8, "whoami", "who", [], {}), [8, 80])
        with self.assertRaisesRegex(LookupError, "not in a session's call"):
            sol_sessions.current()


if __name__ == "__main__":
    unittest.main()
