"""The `solarsystem` service on a sol (docs/services.md): where the calling
session's ship is, and moving it: out of space and back (leave, enter), and
through a gate to the neighbouring system (jump), possibly on another sol.

A jump asks the session's proxy to move the session (`proxy.change_session`
over the link that proxy dialled here): the proxy switches its routing in
one step and announces it to both sols (ClientSessions.change), so the
client's next call and its ship's moves go to the destination's sol. The
ship arrives at the destination gate (the gate's `destination_gate_id`).
Its system and position go to the ships table before the move (and back if
the session is still here after a refusal), as positions do on leave and at
the session's end (sol_sessions.py).
"""

import math

import db

import rpc_errors
import sol_sessions
from rpc_services import exposed

JUMP_RANGE = 2500.0  # metres: how near its gate a ship must be to jump

_GATES = ("SELECT g.id, d.system_id, s.name, g.x, g.y, g.z FROM gates g"
          " JOIN gates d ON d.id = g.destination_gate_id JOIN solar_systems s ON s.id = d.system_id"
          " WHERE g.system_id = ?")


def _session():
    session = sol_sessions.current()
    if not isinstance(session.attributes.get("ship_id"), int):
        raise LookupError("session %d has no ship" % session.session_id)
    return session


class SolarSystem:
    service_name = "solarsystem"

    def __init__(self, node):
        self.node = node  # sol_node.SolNode: its sessions and notifier

    @exposed(role="player")
    def info(self):
        """The session's system: its name, security, gates and pilots in space here."""
        session = _session()
        system = session.attributes["solar_system_id"]
        rows = db.query("SELECT name, security FROM solar_systems WHERE id = ?", system)
        if not rows:
            raise LookupError("no solar system %d" % system)
        gates = [{"gate_id": gate, "destination_system_id": destination, "destination_name": name,
                  "position": [x, y, z]} for gate, destination, name, x, y, z in db.query(_GATES + " ORDER BY g.id",
                                                                                          system)]
        return {"solar_system_id": system, "name": rows[0][0], "security": float(rows[0][1]), "gates": gates,
                "pilots": len(self.node.sessions.in_system(system)), "in_space": session.in_space}

    @exposed(role="player")
    def enter(self):
        """The ship undocks into its system's space (movement, local chat)."""
        session = _session()
        if not session.in_space:
            self.node.sessions.place(session)
            if not session.in_space:
                raise RuntimeError("the ship cannot enter space here now")
        return dict(session.attributes)

    @exposed(role="player")
    def leave(self):
        """The ship docks: out of space and local chat; its position is saved."""
        session = _session()
        if session.in_space:
            position = self.node.sessions.dock(session)
            sol_sessions.save_position(session.attributes["ship_id"], session.attributes["solar_system_id"],
                                       position)
        return dict(session.attributes)

    @exposed(role="player")
    def jump(self, gate_id):
        """Through `gate_id` (a gate of this system, within JUMP_RANGE of the
        ship) to its destination; returns the session's new attributes."""
        if not isinstance(gate_id, int) or isinstance(gate_id, bool):
            raise TypeError("gate_id must be an int")
        session = _session()
        if not session.in_space:
            raise ValueError("the ship is docked: enter space first")
        system, ship = session.attributes["solar_system_id"], session.attributes["ship_id"]
        rows = db.query("SELECT d.system_id, g.x, g.y, g.z, d.x, d.y, d.z FROM gates g"
                        " JOIN gates d ON d.id = g.destination_gate_id WHERE g.id = ? AND g.system_id = ?",
                        gate_id, system)
        if not rows:
            raise LookupError("no gate %d in solar system %d" % (gate_id, system))
        destination, gate_position, position = rows[0][0], rows[0][1:4], list(rows[0][4:7])
        distance = math.dist(session.position(), gate_position)
        if distance > JUMP_RANGE:
            raise ValueError("the ship is %.0f m from gate %d: jump range is %.0f m" % (distance, gate_id, JUMP_RANGE))
        proxy = self.node.notifier.proxies.get(session.proxy_node)
        if proxy is None:
            raise rpc_errors.Unavailable("no link to the session's proxy %d" % session.proxy_node)
        # The ship's row first: the old sol's save at the session's drop then finds it gone from this
        # system, and a sol that dies now leaves the ship where the player will find it.
        db.execute("UPDATE ships SET system_id = ?, x = ?, y = ?, z = ? WHERE id = ?", destination, *position, ship)
        try:
            # The proxy moves the session (routing, both sols told); this sol drops it before the answer arrives.
            attributes = proxy.call("proxy", "change_session",
                                    (session.session_id, {"solar_system_id": destination, "ship_position": position}))
        except rpc_errors.RpcError:
            # Still here, in this system: the proxy did not move it (a SessionChange precedes any answer).
            if self.node.sessions.by_id.get(session.session_id) is session and \
                    session.attributes.get("solar_system_id") == system:
                db.execute("UPDATE ships SET system_id = ?, x = ?, y = ?, z = ? WHERE id = ?",
                           system, *session.position(), ship)
            raise
        return attributes


def register(services, node):
    services.register(SolarSystem(node))
