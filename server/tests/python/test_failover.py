"""Failures with real processes (issue 11, item 8): two `shard sol`s and
`shard proxy`s against the private MariaDB (ctest's `mariadb` fixture),
clients speaking the wire by hand on plain sockets (cluster_support.Client,
proxy.tls = off):

- a sol killed mid-session: its sessions' next call gets Unavailable at once
  (not a hang), the directory moves its systems to the other sol, and the
  proxy moves the sessions there without the client doing anything;
- a proxy killed: its clients reconnect through the next proxy of their list
  and log in, and the dead proxy's session rows are released;
- a malformed or oversized packet after the login, and a client that never
  reads: the proxy cuts that client off (a protocol error, its 64 KiB
  packet bound, its 16 MiB send bound) and goes on serving the others.

Every wait is bounded (cluster_support: node_timeout 5 s, heartbeat 0.25 s)."""

import os
import socket
import struct
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "engine", "tests", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "db", "tests", "python"))

import db  # noqa: E402
import rpc_pb2  # noqa: E402
from cluster_support import RPC_CALL, Client, Cluster, add_pilot, frame  # noqa: E402
from support import StacklessTestCase  # noqa: E402

SYSTEM, OTHER_SYSTEM = 30000001, 30000002  # split over the two sols
USERS = ("alice", "bob", "carol", "dave")
SELECT = ("characters", "select")  # the call that plays a character (its system: its ship's)

# 200 fps: under the default dispatch strategy (main_loop) each database
# statement's completion waits for the next frame; at 30 fps a node's start
# (a dozen statements to register and take its systems) took ~0.5 s, and
# these tests start three or four nodes each.
cluster = Cluster("shard_test_failover", {"proxy": {"tls": "off"}, "loop": {"fps": 200}})
_characters, _ships = {}, {}  # user -> its character's id, its ship's (in SYSTEM)


def setUpModule():
    cluster.set_up()
    for system in (SYSTEM, OTHER_SYSTEM):
        db.execute("INSERT INTO solar_systems (id, name, security, x, y, z) VALUES (?, ?, 0.5, 0, 0, 0)",
                   system, "S-%d" % system)
    for i, name in enumerate(USERS):
        _characters[name], _ships[name] = add_pilot(name, SYSTEM, 1000.0 * i)


def tearDownModule():
    cluster.tear_down()


def host_of(system):
    """The live sol that hosts `system`, or None."""
    rows = db.query("SELECT a.node_id FROM system_assignments a JOIN cluster_nodes n ON n.id = a.node_id"
                    " WHERE a.system_id = ? AND n.gone_at IS NULL", system)
    return rows[0][0] if rows else None


def connect_first(ports):
    """A client on the first proxy of `ports` that accepts: what a game
    client with a list of proxies does when its proxy is gone."""
    for port in ports:
        try:
            return Client(port)
        except ConnectionRefusedError:
            continue
    raise ConnectionRefusedError("no proxy of %r accepts" % (ports,))


class FailoverCase(StacklessTestCase):
    deadline_s = 240

    def start_sols(self, *names, args=()):
        db.execute("DELETE FROM client_sessions")  # a failed test's rows would hold their nodes' rows
        cluster.reset_directory()
        sols = [cluster.start("sol", name, *args) for name in names]
        for sol in sols:
            self.addCleanup(sol.stop)
            sol.node_id = sol.registered()["id"]
        cluster.poll(lambda: len({host_of(SYSTEM), host_of(OTHER_SYSTEM)} - {None}) == len(sols),
                     "the systems on %d sols" % len(sols))
        return sols

    def start_proxy(self, name, sols, args=()):
        proxy = cluster.start("proxy", name, *args)
        self.addCleanup(proxy.stop)
        proxy.port = proxy.registered()["port"]
        for sol in sols:
            proxy.wait_log(r"ping over the link to sol %d" % sol.node_id)
        return proxy

    def enter(self, port, name):
        """A client logged in as `name` whose character is in SYSTEM; (client, LoginReply)."""
        client = Client(port)
        self.addCleanup(client.close)
        reply = client.login(name)
        _, error = client.call(*SELECT, _characters[name])
        self.assertIsNone(error)
        return client, reply


class SolKilled(FailoverCase):

    def test_a_killed_sols_sessions_get_unavailable_then_follow_their_system_to_the_other_sol(self):
        sols = self.start_sols("sol-f1", "sol-f2")
        proxy = self.start_proxy("proxy-f", sols)
        client, reply = self.enter(proxy.port, "alice")
        first = client.call("ping", "ping")[0]["node_id"]
        self.assertEqual(first, host_of(SYSTEM))
        dead = next(sol for sol in sols if sol.node_id == first)
        survivor = next(sol for sol in sols if sol is not dead)

        dead.kill()
        proxy.wait_log(r"link to sol %d \(sol-f\d\) at \S+ closed" % dead.node_id)  # with the process
        # The next call: a clean error at once, saying what happens, not a hang.
        _, error = client.call("ping", "ping")
        self.assertEqual(error.kind, rpc_pb2.RpcError.UNAVAILABLE, error.message)
        self.assertIn("sol %d, which hosts solar system %d, is unreachable; the session moves to the system's new sol"
                      " within seconds: retry" % (dead.node_id, SYSTEM), error.message)
        # A move meanwhile has nowhere to go: dropped, the client kept (not cut off as a
        # move of a ship it does not own would be).
        client.move(_ships["alice"], 1.0, 1)
        _, error = client.call("ping", "ping")
        self.assertEqual(error.kind, rpc_pb2.RpcError.UNAVAILABLE, error.message)
        # The directory gives the system to the survivor, and the proxy moves the
        # session there: the client calls again and is answered, nothing re-selected.
        cluster.poll(lambda: host_of(SYSTEM) == survivor.node_id, "the system reassigned to the survivor")

        def answered_by_survivor():
            result, error = client.call("ping", "ping")
            return error is None and result["node_id"] == survivor.node_id
        cluster.poll(answered_by_survivor, "the session answered by the survivor")
        proxy.wait_log(r"session %d .*: solar system %d is on sol %d now \(was %d\): moving the session there"
                       % (reply.session_id, SYSTEM, survivor.node_id, dead.node_id))
        survivor.wait_log(r"session %d arrived from proxy" % reply.session_id)
        # Selecting the character again works too.
        attributes, error = client.call(*SELECT, _characters["alice"])
        self.assertIsNone(error)
        self.assertEqual(attributes["solar_system_id"], SYSTEM)
        self.assertEqual(client.call("ping", "ping")[0]["node_id"], survivor.node_id)


class ProxyKilled(FailoverCase):

    def test_a_killed_proxys_clients_log_in_through_the_next_and_its_rows_are_released(self):
        (sol,) = self.start_sols("sol-p")
        a, b = self.start_proxy("proxy-pa", [sol]), self.start_proxy("proxy-pb", [sol])
        bob, first = self.enter(a.port, "bob")
        self.assertEqual(bob.call("ping", "ping")[0]["node_id"], sol.node_id)
        _, carol = self.enter(a.port, "carol")  # never comes back
        sol.wait_log(r"session %d arrived from proxy" % first.session_id)

        a.kill()
        with self.assertRaises((EOFError, ConnectionError)):
            bob.recv()
        sol.wait_log(r"session %d left this sol: its proxy's link closed" % first.session_id)
        bob = connect_first([a.port, b.port])
        self.addCleanup(bob.close)
        again = bob.login("bob")
        _, error = bob.call(*SELECT, _characters["bob"])
        self.assertIsNone(error)
        self.assertEqual(bob.call("ping", "ping")[0]["node_id"], sol.node_id)
        self.assertEqual(db.query("SELECT session_id, proxy_node_id FROM client_sessions WHERE account_id = ?",
                                  again.user_id), [(again.session_id, b.registered()["id"])])
        # Once the directory marks the dead proxy gone, its rows go too.
        cluster.poll(lambda: db.query("SELECT COUNT(*) FROM client_sessions WHERE account_id = ?",
                                      carol.user_id) == [(0,)], "the dead proxy's session rows released")


class ProxyRestarted(FailoverCase):
    # A timeout longer than the test: no node is marked gone by a heartbeat here.
    SLOW = ("--cluster.node_timeout", "60")

    def test_a_proxy_restarted_at_once_releases_its_dead_predecessors_rows(self):
        (sol,) = self.start_sols("sol-r", args=self.SLOW)
        proxy = self.start_proxy("proxy-r", [sol], args=self.SLOW)
        _, carol = self.enter(proxy.port, "carol")
        proxy.kill()
        # Its supervisor starts it again (same name, same host, its pid dead):
        # the new incarnation marks the old one gone and releases its rows.
        again = self.start_proxy("proxy-r", [sol], args=self.SLOW)
        self.assertEqual(cluster.poll(lambda: db.query("SELECT gone_reason FROM cluster_nodes WHERE pid = ?",
                                                       proxy.proc.pid), "the old proxy marked gone"),
                         [("process gone",)])
        cluster.poll(lambda: db.query("SELECT COUNT(*) FROM client_sessions WHERE account_id = ?",
                                      carol.user_id) == [(0,)], "the dead proxy's session rows released")
        again.wait_log(r"released 1 client sessions of gone proxies")


class HostileClients(FailoverCase):

    def test_a_malformed_or_oversized_packet_after_the_login_closes_that_client_only(self):
        (sol,) = self.start_sols("sol-h")
        proxy = self.start_proxy("proxy-h", [sol])
        for packet, logged in ((frame(RPC_CALL, b"\xff\xff\xff"), r"payload does not parse as RpcCall"),
                               (struct.pack("<I", 100000) + b"\x01" * 4096, r"oversized")):
            with self.subTest(logged=logged):
                client, _ = self.enter(proxy.port, "carol")
                client.sock.sendall(packet)
                with self.assertRaises((EOFError, ConnectionError)):
                    while True:
                        client.recv()
                proxy.wait_log(logged)
        other, _ = self.enter(proxy.port, "bob")
        self.assertEqual(other.call("ping", "ping", "still here")[0]["echo"], "still here")
        self.assertIsNone(proxy.proc.poll())

    def test_a_client_that_never_reads_is_cut_off_and_the_proxy_serves_the_others(self):
        (sol,) = self.start_sols("sol-n")
        proxy = self.start_proxy("proxy-n", [sol])
        client, reply = self.enter(proxy.port, "dave")
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        # Calls whose answers (60 KB each) pile up in the proxy: more than its
        # 16 MiB send bound and the kernel's buffers, never read.
        big = "x" * 60000
        try:
            for _ in range(1000):
                call = rpc_pb2.RpcCall(call_id=next(client.call_ids), service="ping", method="ping",
                                       timeout_ms=10000)
                call.args.add().string_value = big
                client.sock.sendall(frame(RPC_CALL, call.SerializeToString()))
        except (ConnectionError, OSError):
            pass  # cut off while still sending
        proxy.wait_log(r"send queue full \(peer not reading\)")
        proxy.wait_log(r"session %d .* ended: connection closed" % reply.session_id)
        other, _ = self.enter(proxy.port, "bob")  # the proxy and the sol go on
        self.assertEqual(other.call("ping", "ping", "still here")[0]["echo"], "still here")
        self.assertIsNone(proxy.proc.poll())
        self.assertIsNone(sol.proc.poll())
        # Its flood of relayed answers never filled the proxy's link to the sol
        # (which the sol would have cut, with every session on it).
        self.assertNotRegex(proxy.log(), r"link to sol .* closed")


if __name__ == "__main__":
    unittest.main()
