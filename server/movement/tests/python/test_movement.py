"""The sol's native movement system end to end (server/movement, docs/movement.md).

Clients are plain sockets of the standard library speaking docs/protocol.md by
hand (a Hello offering no codec, then movement frames); the sol side is a
_net listener whose movement frames go to the native handler of _movement.
Moves are applied at the game loop's tick, the clients in range get the new
positions and the far ones nothing, and neither Python nor the interpreter
lock is on the packets' way.
"""

import itertools
import os
import socket
import struct
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "..", "..", "engine", "tests", "python"))

import _engine  # noqa: E402
import _movement  # noqa: E402
import _net  # noqa: E402
import gameloop  # noqa: E402
import support  # noqa: E402
from support import wait_until  # noqa: E402
from test_gameloop import LoopTestCase  # noqa: E402

HOST = "127.0.0.1"
MOVEMENT = 10
NATIVE_HIGH = 0x04 | (2 << 3)   # flags: native, priority high
DEST_ENTITY = 4
# Hello{min_version: 1, max_version: 1}, no codec, no TLS (docs/protocol.md).
HELLO_PAYLOAD = bytes([0x08, 0x01, 0x10, 0x01])
# shard.wire.Movement's fields, all fixed-width: (field number, struct format).
FIELDS = [(1, "<Q"), (2, "<d"), (3, "<d"), (4, "<d"), (5, "<f"), (6, "<f"), (7, "<f"), (8, "<f"),
          (9, "<I"), (10, "<Q")]
NAMES = ["entity_id", "x", "y", "z", "vx", "vy", "vz", "heading", "sequence", "timestamp_us"]
systems = itertools.count(100)


def setUpModule():
    support.setUpModule()


def tearDownModule():
    import gc
    gc.collect()
    wait_until(lambda: _net._counts() == {"connections": 0, "listeners": 0, "objects": 0},
               what="connections and listeners released: %r" % (_net._counts(),))
    support.tearDownModule()


def frame(kind, payload, flags=0x18, dest_kind=0, target_id=0):
    return (struct.pack("<IBBBBH", 12 + len(payload), 1, kind, flags, dest_kind, 0)
            + target_id.to_bytes(6, "little") + payload)


def movement(entity_id, x, y, z, sequence, vx=0.0):
    values = [entity_id, x, y, z, vx, 0.0, 0.0, 0.0, sequence, 0]
    out = b""
    for (number, fmt), value in zip(FIELDS, values):
        wire_type = 1 if fmt in ("<Q", "<d") else 5
        out += bytes([number << 3 | wire_type]) + struct.pack(fmt, value)
    return out


def parse_movement(payload):
    formats = dict(FIELDS)
    out, i = {}, 0
    while i < len(payload):
        number = payload[i] >> 3
        size = struct.calcsize(formats[number])
        out[NAMES[number - 1]] = struct.unpack_from(formats[number], payload, i + 1)[0]
        i += 1 + size
    return out


def recv_exactly(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def recv_frame(sock):
    length = struct.unpack("<I", recv_exactly(sock, 4))[0]
    body = recv_exactly(sock, length)
    kind, flags, dest_kind = body[1], body[2], body[3]
    target_id = int.from_bytes(body[6:12], "little")
    return kind, flags, dest_kind, target_id, body[12:]


class Client:
    """A game client on a plain socket, and the sol's end of its connection."""

    def __init__(self, listener):
        self.sock = socket.create_connection((HOST, listener.port), timeout=5)
        self.sock.sendall(frame(1, HELLO_PAYLOAD))
        kind, *_ = recv_frame(self.sock)  # HelloReply
        assert kind == 2, kind
        self.server = listener.accept(timeout=5)

    def move(self, entity_id, x, y, z, sequence, vx=0.0):
        self.sock.sendall(frame(MOVEMENT, movement(entity_id, x, y, z, sequence, vx), NATIVE_HIGH, DEST_ENTITY,
                                entity_id))

    def close(self):
        self.server.close()  # first: updates it never read are no error of the peer's
        self.sock.close()


class MovementTest(LoopTestCase):

    def setUp(self):
        super().setUp()
        gameloop.set_dispatch_strategy("main_loop")
        self.system = next(systems)
        _movement.add_system(self.system, (-1e6, -1e6, -1e6), (1e6, 1e6, 1e6), max_speed=500.0,
                             interest_radius=1000.0, cell_size=250.0)
        self.listener = _net.listen(HOST, 0, native=_movement.handlers(), codec="none")
        self.addCleanup(self.listener.close)
        self.entities = []

    def client(self, entity_id, position):
        c = Client(self.listener)
        self.addCleanup(c.close)
        _movement.add_entity(entity_id, self.system, c.server, position)
        self.addCleanup(_movement.remove_entity, entity_id)
        return c

    def test_moves_are_applied_at_the_tick_and_reach_only_the_clients_in_range(self):
        # A crowd of 8 in a 100 m row, and 4 far away: each moves once.
        near = {1000 + i: self.client(1000 + i, (i * 100.0, 0.0, 0.0)) for i in range(8)}
        far = {2000 + i: self.client(2000 + i, (50000.0 + i * 100.0, 0.0, 0.0)) for i in range(4)}
        locks = _engine.io_stats()["lock_acquisitions"]
        before = _movement.stats()
        everyone = {**near, **far}
        for entity_id, c in everyone.items():
            c.move(entity_id, _movement.entity(entity_id)["position"][0] + 5.0, 1.0, 2.0, 1, vx=50.0)
        wait_until(lambda: _movement.stats()["packets_in"] - before["packets_in"] == len(everyone),
                   what="every move taken by the native handler")
        wait_until(lambda: _movement.stats()["queued"] == len(everyone), what="every move queued")
        self.assertEqual(_movement.entity(1000)["position"], (0.0, 0.0, 0.0))  # not before the tick
        self.run_frames(2)
        after = _movement.stats()
        self.assertEqual(after["applied"] - before["applied"], len(everyone))
        self.assertEqual(after["rejected"], before["rejected"])
        self.assertEqual(_movement.entity(1003)["position"], (305.0, 1.0, 2.0))
        self.assertEqual(_movement.entity(1003)["velocity"], (50.0, 0.0, 0.0))
        self.assertEqual(_movement.entity(1003)["sequence"], 1)
        # Within 1000 m of 1000 (at 5 m): 1001..1007; of 2000: 2001..2003.
        self.assertEqual(_movement.in_range(1000, 1000.0), list(range(1001, 1008)))
        self.assertEqual(_movement.in_range(2000, 1000.0), [2001, 2002, 2003])
        # Each near client hears of the 7 others' moves, each far one of the 3 others'.
        expected_updates = 8 * 7 + 4 * 3
        self.assertEqual(after["updates_out"] - before["updates_out"], expected_updates)
        for entity_id, c in near.items():
            heard = {}
            for _ in range(7):
                kind, flags, dest_kind, target_id, payload = recv_frame(c.sock)
                self.assertEqual((kind, flags & 0x04, dest_kind, target_id), (MOVEMENT, 0x04, 1, entity_id))
                m = parse_movement(payload)
                heard[m["entity_id"]] = (m["x"], m["y"], m["z"], m["sequence"])
            self.assertEqual(sorted(heard), sorted(set(near) - {entity_id}))
            self.assertEqual(heard[1001 if entity_id != 1001 else 1002][1:], (1.0, 2.0, 1))
            self.assertNotIn(2000, heard)
        # Python never saw a movement packet, and no IO thread took the lock.
        for c in everyone.values():
            self.assertEqual(c.server.stats()["packets_in"], 0)
            self.assertEqual(c.server.stats()["native_packets"], 1)
        self.assertEqual(_engine.io_stats()["lock_acquisitions"], locks)
        self.assertEqual(_movement.stats()["lock_acquisitions"], locks)

    def test_far_clients_receive_nothing(self):
        a = self.client(3001, (0.0, 0.0, 0.0))
        b = self.client(3002, (900000.0, 0.0, 0.0))
        a.move(3001, 10.0, 0.0, 0.0, 1)
        wait_until(lambda: _movement.stats()["queued"] == 1, what="the move queued")
        self.run_frames(2)
        self.assertEqual(_movement.entity(3001)["position"], (10.0, 0.0, 0.0))
        b.sock.settimeout(0.2)
        with self.assertRaises(socket.timeout):
            b.sock.recv(1)

    def test_a_move_past_the_speed_limit_closes_the_sender_with_the_reason(self):
        a = self.client(4001, (0.0, 0.0, 0.0))
        before = _movement.stats()["rejected"]
        a.move(4001, 900.0, 0.0, 0.0, 1, vx=10000.0)
        wait_until(lambda: _movement.stats()["queued"] == 1, what="the move queued")
        self.run_frames(2)
        self.assertEqual(_movement.stats()["rejected"], before + 1)
        self.assertEqual(_movement.entity(4001)["position"], (0.0, 0.0, 0.0))
        with self.assertRaisesRegex(_net.ProtocolError, "speed 10000.* over the limit 500"):
            a.server.recvpacket(timeout=5)
        self.assertEqual(a.sock.recv(1), b"")  # the socket was closed

    def test_a_malformed_movement_closes_the_sender_on_the_io_thread(self):
        a = self.client(5001, (0.0, 0.0, 0.0))
        a.sock.sendall(frame(MOVEMENT, b"\xff\xff\xff", NATIVE_HIGH, DEST_ENTITY, 5001))
        with self.assertRaisesRegex(_net.ProtocolError, "movement: payload of 3 bytes is not a Movement"):
            a.server.recvpacket(timeout=5)

    def test_a_move_goes_client_to_proxy_to_sol_by_the_header_and_is_applied_there(self):
        proxy = _net.listen(HOST, 0, native=_movement.proxy_handlers(), codec="none")
        self.addCleanup(proxy.close)
        # The proxy's link to this sol: updates for its sessions' entities go to their clients natively.
        link = _net.connect(HOST, self.listener.port, role="proxy", native=_movement.proxy_link_handlers())
        self.addCleanup(link.close)
        sol_end = self.listener.accept(timeout=5)
        self.addCleanup(sol_end.close)
        client = Client(proxy)
        self.addCleanup(client.close)
        _movement.add_entity(6001, self.system, sol_end, (0.0, 0.0, 0.0))
        self.addCleanup(_movement.remove_entity, 6001)
        _movement.route_entity(client.server, 6001, link, 7)
        self.addCleanup(_movement.unroute, client.server)
        watcher = Client(proxy)  # another session of the proxy, its ship 6003 near 6001
        self.addCleanup(watcher.close)
        _movement.add_entity(6003, self.system, sol_end, (100.0, 0.0, 0.0))
        self.addCleanup(_movement.remove_entity, 6003)
        _movement.route_entity(watcher.server, 6003, link, 7)
        self.addCleanup(_movement.unroute, watcher.server)
        updates = _movement.proxy_stats()["updates_forwarded"]
        forwarded = _movement.proxy_stats()["forwarded"]
        locks = _engine.io_stats()["lock_acquisitions"]
        client.move(6001, 4.0, 0.0, 0.0, 1)
        wait_until(lambda: _movement.stats()["queued"] == 1, what="the move at the sol")
        self.run_frames(2)
        self.assertEqual(_movement.entity(6001)["position"], (4.0, 0.0, 0.0))
        self.assertEqual(_movement.proxy_stats()["forwarded"], forwarded + 1)
        self.assertEqual(client.server.stats()["packets_in"], 0)   # the proxy's Python saw nothing
        self.assertEqual(sol_end.stats()["packets_in"], 0)         # nor the sol's
        # The sol's update for 6003's view came back through the link to the watcher's client.
        kind, flags, dest_kind, target_id, payload = recv_frame(watcher.sock)
        self.assertEqual((kind, dest_kind, target_id), (MOVEMENT, 1, 6003))
        self.assertEqual(parse_movement(payload)["entity_id"], 6001)
        self.assertEqual(parse_movement(payload)["x"], 4.0)
        self.assertEqual(_movement.proxy_stats()["updates_forwarded"], updates + 1)
        self.assertEqual(link.stats()["packets_in"], 0)
        self.assertEqual(_engine.io_stats()["lock_acquisitions"], locks)
        # An entity that is not the session's: the client is cut off.
        refused = _movement.proxy_stats()["refused"]
        client.move(6002, 0.0, 0.0, 0.0, 1)
        with self.assertRaisesRegex(_net.ProtocolError, "no route for a frame of kind 10 to target 6002"):
            client.server.recvpacket(timeout=5)
        self.assertEqual(_movement.proxy_stats()["refused"], refused + 1)
        self.assertEqual(_movement.unroute(client.server), 1)
        self.assertEqual(_movement.unroute(watcher.server), 1)
        self.assertEqual(_movement.unroute(client.server), 0)

    def test_registration_errors(self):
        with self.assertRaisesRegex(ValueError, "no solar system 999999"):
            _movement.add_entity(1, 999999, None, (0.0, 0.0, 0.0))
        with self.assertRaisesRegex(ValueError, "outside solar system"):
            _movement.add_entity(1, self.system, None, (2e6, 0.0, 0.0))
        with self.assertRaisesRegex(TypeError, "_net.Connection or None"):
            _movement.add_entity(1, self.system, object(), (0.0, 0.0, 0.0))
        with self.assertRaisesRegex(ValueError, "exists or is invalid"):
            _movement.add_system(self.system, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
        self.assertIsNone(_movement.entity(1))
        with self.assertRaisesRegex(ValueError, "invalid PyCapsule"):
            _net.listen(HOST, 0, native=object())
        self.assertFalse(_movement.remove_entity(1))


if __name__ == "__main__":
    unittest.main()
