"""The game services with real processes (docs/services.md): two `shard sol`s
and a `shard proxy` against the private MariaDB (cluster_support), clients
speaking the wire by hand: characters (create, list, select), solar systems
(info, leave, enter, a jump through a gate to the other sol), chat (local
and a named channel across the two sols, delivered as Notifications), and
hostile arguments refused with clear errors while the nodes go on. Every
wait is bounded."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "engine", "tests", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "db", "tests", "python"))

import _net  # noqa: E402
import accounts  # noqa: E402
import characters  # noqa: E402
import chat  # noqa: E402
import client_sessions  # noqa: E402
import db  # noqa: E402
import kinds_pb2  # noqa: E402
import proxy_node  # noqa: E402
import rpc_errors  # noqa: E402
import rpc_pb2  # noqa: E402
import rpc_values  # noqa: E402
import sol_node  # noqa: E402
import sol_notify  # noqa: E402
import sol_sessions  # noqa: E402
from cluster_support import RPC_CALL, RPC_ERROR, RPC_REPLY, Client, Cluster, SolsAndProxy, frame  # noqa: E402
from support import StacklessTestCase, run_in_tasklet  # noqa: E402

# HOME has the lowest id: the starter system. The assignment rule (system_assignment.plan) keeps the
# lower ids together: HOME and THIRD on one sol, NEIGHBOUR on the other.
HOME, THIRD, NEIGHBOUR = 30000001, 30000002, 30000003
GATE, NEIGHBOUR_GATE = 50000001, 50000002  # HOME's gate at the origin, NEIGHBOUR's at x = 1000 m
THIRD_GATE, THIRD_ARRIVAL = 50000003, 50000004  # HOME's at z = 9000 m, THIRD's at its origin
APP, BAD, UNAVAILABLE = rpc_pb2.RpcError.APPLICATION, rpc_pb2.RpcError.BAD_ARGUMENTS, rpc_pb2.RpcError.UNAVAILABLE
# character: (system, x): alice and bob together far from HOME's gate, carol by NEIGHBOUR's, dave by HOME's.
CHARACTERS = {"alice": (HOME, 50000.0), "bob": (HOME, 50100.0), "carol": (NEIGHBOUR, 1200.0), "dave": (HOME, 100.0)}

# 200 fps: the nodes' database statements each wait for a frame (cluster_support).
cluster = Cluster("shard_test_world", {"proxy": {"tls": "off"}, "loop": {"fps": 200}})
_state = {}  # character name -> (character id, ship id)


def setUpModule():
    cluster.set_up()
    for system in (HOME, NEIGHBOUR, THIRD):
        db.execute("INSERT INTO solar_systems (id, name, security, x, y, z) VALUES (?, ?, 0.5, 0, 0, 0)",
                   system, "S-%d" % system)
    db.execute("INSERT INTO gates (id, system_id, destination_gate_id, x, y, z) VALUES (?, ?, ?, 0, 0, 0),"
               " (?, ?, ?, 1000, 0, 0), (?, ?, ?, 0, 0, 9000), (?, ?, ?, 0, 0, 0)", GATE, HOME, NEIGHBOUR_GATE,
               NEIGHBOUR_GATE, NEIGHBOUR, GATE, THIRD_GATE, HOME, THIRD_ARRIVAL, THIRD_ARRIVAL, THIRD, THIRD_GATE)
    for name in list(CHARACTERS) + ["newbie", "other", "erin"]:
        how, account = run_in_tasklet(accounts.create, name, name + "-pw")
        assert how == "ok", account
        _state.setdefault("accounts", {})[name] = account
        if name in CHARACTERS:
            system, x = CHARACTERS[name]
            character = db.execute("INSERT INTO characters (account_id, name) VALUES (?, ?)", account, name).lastrowid
            ship = db.execute("INSERT INTO ships (owner_id, type_id, system_id, x, y, z) VALUES (?, 1, ?, ?, 0, 0)",
                              character, system, x).lastrowid
            _state[name] = (character, ship)


def tearDownModule():
    cluster.tear_down()


def _chat(note):
    """A chat Notification's args, checked for its service and event."""
    assert (note.service, note.event) == ("chat", "message"), note
    return [rpc_values.from_wire(v) for v in note.args]


class WorldTest(StacklessTestCase):
    deadline_s = 240

    @classmethod
    def setUpClass(cls):
        # HOME and THIRD on one sol, NEIGHBOUR on the other.
        cls.nodes = SolsAndProxy(cluster, "proxy-w", placed=lambda hosts: hosts[THIRD] == hosts[HOME])
        cls.sols, cls.proxy, cls.port = cls.nodes.sols, cls.nodes.proxy, cls.nodes.port
        cls.home_sol, cls.home_id = cls.nodes.host(HOME)
        cls.neighbour_sol, cls.neighbour_id = cls.nodes.host(NEIGHBOUR)

    @classmethod
    def tearDownClass(cls):
        cls.nodes.stop()

    def client(self, name):
        client = Client(self.port)
        self.addCleanup(client.close)
        client.login(name)
        return client

    def playing(self, name):
        """A client of `name`'s account playing that character, in space."""
        client = self.client(name)
        attributes = self.ok(client.call("characters", "select", _state[name][0]))
        self.assertEqual(attributes["ship_id"], _state[name][1])
        return client

    def move_seen(self, observer, ship, x):
        """Waits (bounded by the client's socket timeout) for `observer` to see `ship` at `x`."""
        while True:
            seen = observer.next_move()
            if (seen.entity_id, seen.x) == (ship, x):
                return seen

    def ok(self, answer):
        result, error = answer
        self.assertIsNone(error)
        return result

    def refused(self, answer, kind, type_name, text):
        result, error = answer
        self.assertIsNone(result)
        self.assertEqual((error.kind, error.type), (kind, type_name), error)
        self.assertIn(text, error.message)

    def test_characters_are_created_listed_and_selected(self):
        client = self.client("newbie")
        self.assertEqual(self.ok(client.call("characters", "list")), [])
        self.refused(client.call("chat", "channels"), UNAVAILABLE, "", "select a character first")
        for bad, type_name, why in (("ab", "ValueError", "3 to 32"), ("bad!name", "ValueError", "letters, digits"),
                                    (" lead", "ValueError", "letters, digits"), ("x" * 33, "ValueError", "3 to 32"),
                                    (42, "TypeError", "must be a string")):
            self.refused(client.call("characters", "create", bad), APP, type_name, why)
        created = self.ok(client.call("characters", "create", "New Pilot"))
        self.assertEqual(created["name"], "New Pilot")
        self.assertEqual(created["solar_system_id"], HOME)  # the starter system: the lowest id
        self.assertEqual(db.query("SELECT balance FROM wallets WHERE character_id = ?", created["character_id"]),
                         [(characters.STARTING_BALANCE,)])
        self.assertEqual(self.ok(client.call("characters", "list")), [created])
        self.refused(self.client("other").call("characters", "create", "New Pilot"), APP, "ValueError", "taken")
        for name in ("New Pilot 2", "New Pilot 3"):
            self.ok(client.call("characters", "create", name))
        self.refused(client.call("characters", "create", "New Pilot 4"), APP, "ValueError", "at most 3")
        self.refused(client.call("characters", "select", _state["alice"][0]), APP, "LookupError", "no character")
        attributes = self.ok(client.call("characters", "select", created["character_id"]))
        self.assertEqual((attributes["solar_system_id"], attributes["character_name"]), (HOME, "New Pilot"))
        self.assertEqual(self.ok(client.call("ping", "ping"))["node_id"], self.home_id)

    def test_info_leave_and_enter(self):
        alice, bob = self.playing("alice"), self.playing("bob")
        alice_ship = _state["alice"][1]
        # Two pilots once the earlier tests' sessions have left the sol (their ends are asynchronous).
        info = cluster.poll(lambda: (lambda i: i if i["pilots"] == 2 else None)(
            self.ok(alice.call("solarsystem", "info"))), "alice and bob the only pilots in the system")
        self.assertEqual((info["solar_system_id"], info["name"], info["security"], info["in_space"]),
                         (HOME, "S-%d" % HOME, 0.5, True))
        self.assertEqual(info["gates"], [{"gate_id": GATE, "destination_system_id": NEIGHBOUR,
                                          "destination_name": "S-%d" % NEIGHBOUR, "position": [0.0, 0.0, 0.0]},
                                         {"gate_id": THIRD_GATE, "destination_system_id": THIRD,
                                          "destination_name": "S-%d" % THIRD, "position": [0.0, 0.0, 9000.0]}])
        alice.move(alice_ship, 50001.0, 1)
        self.move_seen(bob, alice_ship, 50001.0)  # applied on the sol
        self.assertEqual(self.ok(alice.call("solarsystem", "leave"))["solar_system_id"], HOME)
        self.assertEqual(db.query("SELECT x FROM ships WHERE id = ?", alice_ship), [(50001.0,)])  # saved on leave
        self.assertFalse(self.ok(alice.call("solarsystem", "info"))["in_space"])
        self.assertEqual(self.ok(bob.call("chat", "members", "local")), ["bob"])
        self.refused(alice.call("chat", "send", "local", "hello?"), APP, "ValueError", "docked")
        self.refused(alice.call("solarsystem", "jump", GATE), APP, "ValueError", "docked")
        self.ok(alice.call("solarsystem", "enter"))
        self.assertTrue(self.ok(alice.call("solarsystem", "info"))["in_space"])
        self.assertEqual(self.ok(alice.call("chat", "channels")), ["local"])
        alice.move(alice_ship, 50002.0, 2)
        self.move_seen(bob, alice_ship, 50002.0)
        alice.close()  # the session's end saves where the ship is
        cluster.poll(lambda: db.query("SELECT x FROM ships WHERE id = ?", alice_ship) == [(50002.0,)],
                     "alice's ship saved at logout")

    def test_local_chat_reaches_the_system_and_not_the_next(self):
        alice, bob, carol = self.playing("alice"), self.playing("bob"), self.playing("carol")
        cluster.poll(lambda: self.ok(alice.call("chat", "members", "local")) == ["alice", "bob"],
                     "alice and bob the only members of local")
        self.assertIsNone(self.ok(alice.call("chat", "send", "local", "o7 local")))
        for client in (alice, bob):
            channel, sender, name, text, when = _chat(client.next_notification())
            self.assertEqual((channel, sender, name, text), ("local", _state["alice"][0], "alice", "o7 local"))
            self.assertIsInstance(when, float)
        self.ok(carol.call("chat", "send", "local", "anyone?"))
        self.assertEqual(_chat(carol.next_notification())[3], "anyone?")  # carol's local is hers alone
        self.ok(alice.call("ping", "ping"))
        self.ok(bob.call("ping", "ping"))
        self.assertEqual(alice.notifications + bob.notifications, [])

    def test_a_named_channel_reaches_members_on_both_sols(self):
        alice, carol = self.playing("alice"), self.playing("carol")
        self.refused(alice.call("chat", "send", "fleet", "before"), APP, "LookupError", "join it first")
        for client in (alice, carol):
            self.assertIsNone(self.ok(client.call("chat", "join", "fleet")))
        self.assertEqual(self.ok(carol.call("chat", "members", "fleet")), ["alice", "carol"])
        self.assertEqual(self.ok(alice.call("chat", "channels")), ["local", "fleet"])
        self.ok(carol.call("chat", "send", "fleet", "from the neighbour"))  # carol's sol, alice on the other
        for client in (alice, carol):
            self.assertEqual(_chat(client.next_notification())[:4],
                             ["fleet", _state["carol"][0], "carol", "from the neighbour"])
        # carol leaves the game: a message to her is dropped, never the sender's error.
        carol.close()
        self.ok(alice.call("chat", "send", "fleet", "still there?"))
        self.assertEqual(_chat(alice.next_notification())[3], "still there?")
        self.ok(alice.call("chat", "leave", "fleet"))
        self.refused(alice.call("chat", "members", "fleet"), APP, "LookupError", "join it first")

    def test_a_jump_through_a_gate_moves_the_session_to_the_other_sol(self):
        dave, carol = self.playing("dave"), self.playing("carol")
        dave_ship = _state["dave"][1]
        self.refused(self.playing("alice").call("solarsystem", "jump", GATE), APP, "ValueError", "jump range")
        self.refused(dave.call("solarsystem", "jump", NEIGHBOUR_GATE), APP, "LookupError", "no gate")
        self.assertEqual(self.ok(dave.call("ping", "ping"))["node_id"], self.home_id)
        attributes = self.ok(dave.call("solarsystem", "jump", GATE))
        self.assertEqual((attributes["solar_system_id"], attributes["ship_position"]), (NEIGHBOUR, [1000.0, 0.0, 0.0]))
        # The very next call is answered by the other sol; the ship is saved where it arrived.
        self.assertEqual(self.ok(dave.call("ping", "ping"))["node_id"], self.neighbour_id)
        self.assertEqual(db.query("SELECT system_id, x FROM ships WHERE id = ?", dave_ship), [(NEIGHBOUR, 1000.0)])
        self.assertEqual(self.ok(dave.call("solarsystem", "info"))["pilots"], 2)
        # Its moves now reach carol, in the new system.
        dave.move(dave_ship, 1000.5, 1)
        self.move_seen(carol, dave_ship, 1000.5)

    def test_a_jump_to_a_system_of_the_same_sol(self):
        erin = db.execute("INSERT INTO characters (account_id, name) VALUES (?, 'erin')",
                          _state["accounts"]["erin"]).lastrowid
        ship = db.execute("INSERT INTO ships (owner_id, type_id, system_id, x, y, z) VALUES (?, 1, ?, 0, 0, 9100)",
                          erin, HOME).lastrowid
        _state["erin"] = (erin, ship)
        client = self.playing("erin")
        attributes = self.ok(client.call("solarsystem", "jump", THIRD_GATE))
        self.assertEqual((attributes["solar_system_id"], attributes["ship_position"]), (THIRD, [0.0, 0.0, 0.0]))
        self.assertEqual(self.ok(client.call("ping", "ping"))["node_id"], self.home_id)  # THIRD's sol too
        info = self.ok(client.call("solarsystem", "info"))
        self.assertEqual((info["solar_system_id"], info["in_space"], info["pilots"]), (THIRD, True, 1))
        self.assertEqual(self.ok(client.call("chat", "members", "local")), ["erin"])
        self.assertEqual(db.query("SELECT system_id, z FROM ships WHERE id = ?", ship), [(THIRD, 0.0)])

    def test_hostile_arguments_are_refused_and_the_nodes_go_on(self):
        bob = self.playing("bob")
        self.refused(bob.call("chat", "send", "local", "x" * 50000), APP, "ValueError", "1 to 1000")
        self.refused(bob.call("chat", "send", "local", ""), APP, "ValueError", "1 to 1000")
        self.refused(bob.call("chat", "send", 5, "hi"), APP, "TypeError", "channel name is a string")
        self.refused(bob.call("chat", "send", "local", ["hi"]), APP, "TypeError", "chat message is a string")
        self.refused(bob.call("chat", "join", "a" * 500), APP, "ValueError", "3 to 32")
        self.refused(bob.call("chat", "join", "local"), APP, "ValueError", "entering space")
        self.refused(bob.call("chat", "send"), BAD, "", "missing")
        self.refused(bob.call("solarsystem", "jump", "gate"), APP, "TypeError", "must be an int")
        self.refused(bob.call("characters", "select", None), APP, "TypeError", "must be an int")
        # 20 messages sent at once, past the burst of 5: some are refused.
        calls = []
        for i in range(20):
            call = rpc_pb2.RpcCall(call_id=1000 + i, service="chat", method="send", timeout_ms=10000)
            for arg in ("local", "spam %d" % i):
                rpc_values.to_wire(arg, call.args.add())
            calls.append(frame(RPC_CALL, call.SerializeToString()))
        bob.sock.sendall(b"".join(calls))
        answers, refusals = 0, []
        while answers < 20:
            kind, payload = bob.recv()
            if kind in (RPC_REPLY, RPC_ERROR):
                answers += 1
                if kind == RPC_ERROR:
                    refusals.append(rpc_pb2.RpcError.FromString(payload).message)
            else:
                bob._keep(kind, payload)  # his own messages, delivered
        self.assertTrue(refusals)
        self.assertIn("too many messages", refusals[0])
        self.assertEqual(self.ok(bob.call("ping", "ping"))["node_id"], self.home_id)


class ChatBoundsTest(StacklessTestCase):
    """A named channel's bounds, on a sol's chat service in this process
    (the test database), with bounds of 2 to keep it small."""

    def test_a_full_channel_and_a_character_in_too_many_refuse_a_join(self):
        node = sol_node.SolNode({})
        chat.register(node.services, node)
        for session_id, name in enumerate(("alice", "bob", "carol"), start=1):
            session = node.sessions.by_id[session_id] = sol_sessions.SolSession(session_id, 1, None)
            session.attributes.update(role="player", character_id=_state[name][0], character_name=name)
        self.addCleanup(setattr, chat, "MAX_MEMBERS", chat.MAX_MEMBERS)
        self.addCleanup(setattr, chat, "MAX_CHANNELS", chat.MAX_CHANNELS)
        self.addCleanup(db.execute, "DELETE m FROM chat_members m JOIN chat_channels c ON c.id = m.channel_id"
                                    " WHERE c.name IN ('crowd', 'second', 'third')")
        chat.MAX_MEMBERS = chat.MAX_CHANNELS = 2

        def join(session_id, channel):
            return node.sessions.call(session_id, "chat", "join", [channel], {})

        join(1, "crowd")
        join(2, "crowd")
        with self.assertRaisesRegex(rpc_errors.ApplicationError, "'crowd' is full: at most 2 members"):
            join(3, "crowd")
        join(2, "crowd")  # a member joining again: nothing to refuse
        join(1, "second")
        with self.assertRaisesRegex(rpc_errors.ApplicationError, "at most 2 channels"):
            join(1, "third")
        join(1, "crowd")  # already in it, though in as many channels as allowed
        self.assertEqual(node.sessions.call(1, "chat", "channels", [], {}), ["crowd", "second"])  # docked: no local


class NotifierTest(StacklessTestCase):
    """The sol's side of a notification to sessions that are gone: dropped, counted, no error."""

    def test_a_notification_to_a_gone_session_or_character_is_dropped_and_counted(self):
        sessions = sol_sessions.SolSessions(None, lambda: 1)
        notifier = sol_notify.Notifier(sessions)
        notifier.to_sessions([12345], "chat", "message", "local", 1, "x", "hi", 0.0)
        self.assertEqual(notifier.stats()["dropped"], 1)
        # A character nobody plays (no client_sessions row), on no sol.
        notifier.to_characters([_state["dave"][0] + 1000], "market", "trade", 1, 2, 3, 4)
        self.assertEqual(notifier.stats()["dropped"], 2)
        # A session on a proxy this sol has no link from.
        session = sessions.by_id[7] = sol_sessions.SolSession(7, 99, None)
        session.attributes["character_id"] = 5
        notifier.to_characters([5], "market", "trade")
        self.assertEqual((notifier.stats()["dropped"], notifier.stats()["sent"]), (3, 0))


class ProxyNotifyTest(StacklessTestCase):
    """The proxy's side: a notification goes as is to the sessions it names
    that still play the character; the others are dropped and counted."""

    def test_the_proxy_delivers_to_its_sessions_and_drops_the_rest(self):
        listener = _net.listen("127.0.0.1", 0)
        self.addCleanup(listener.close)
        client = _net.connect("127.0.0.1", listener.port)
        self.addCleanup(client.close)
        server = listener.accept(timeout=5)
        self.addCleanup(server.close)
        node = proxy_node.ProxyNode({"proxy.connect_timeout": 1, "proxy.login_window": 60,
                                     "proxy.logins_per_address": 10, "proxy.failures_per_account": 10,
                                     "proxy.password_checks": 0, "proxy.login_queue": 200})
        node.sessions = client_sessions.ClientSessions(1, node.sols)
        session = node.sessions.by_id[7] = client_sessions.Session(7, 1, "alice", "127.0.0.1", server)
        session.attributes["character_id"] = 70
        proxy = node.services.by_name["proxy"]
        payload = rpc_pb2.Notification(service="chat", event="message").SerializeToString()
        # session 7 playing 70: delivered; 7 as 71 (it plays another now), 8 (gone) and malformed ones: dropped.
        self.assertIsNone(proxy.notify([[7, 70], [7, 71], [8, 0], [[7], 0], "7"], payload))  # and two malformed
        self.assertEqual(proxy.stats(), {"delivered": 1, "dropped": 4})
        self.assertEqual(client.recvmessage(timeout=5), (kinds_pb2.NOTIFICATION, payload))


if __name__ == "__main__":
    unittest.main()
