"""A sol's table of the sessions located in its solar systems
(docs/sessions.md), kept from the SessionChange messages (kind 5) the
proxies send over their links, and the `sessions` service through which a
proxy relays a session's RPC calls with the session's own role.

A SessionChange arrives in the link's reader (rpc_endpoint's handlers), in
order with the calls on that link, so a call relayed after a change sees it.
A session whose `sol_node` is another node, or that `ended`, leaves the
table. A session with a ship (`ship_id`) in a solar system has that ship
registered with the native movement system (`_movement.add_entity`), moved
through the link of the proxy that holds the client: its moves and its
neighbours' updates then never go through Python. When the session leaves
the sol (or docks: solarsystem.leave), the ship's position goes to the
`ships` table.
"""

import contextvars
import logging

import _movement
import db
import google.protobuf.message
import kinds_pb2
import uthread

import rpc_endpoint
import rpc_errors
import rpc_services
import rpc_values
import session_pb2
from rpc_services import exposed

log = logging.getLogger("shard.sol")

# The session whose relayed call this tasklet runs (each incoming call has a
# tasklet of its own, and a tasklet's context is its own: docs/python-api.md).
_current = contextvars.ContextVar("shard_current_session")

MAX_SESSIONS = 100000  # per sol: a proxy cannot grow the table without bound
SYSTEM_EXTENT = 1e13   # metres either side of a system's centre that ships may move in


class SolSession:
    """In space: its ship is registered with _movement (`entity`) and it is
    in its system's local chat. Docked (solarsystem.leave): neither."""

    __slots__ = ("session_id", "attributes", "proxy_node", "link", "entity")

    def __init__(self, session_id, proxy_node, link):
        self.session_id, self.proxy_node, self.link = session_id, proxy_node, link
        self.attributes = {}
        self.entity = None  # the ship registered with _movement, while one is

    @property
    def in_space(self):
        return self.entity is not None

    def position(self):
        """Where its ship is now (the movement system knows), else where it entered."""
        state = _movement.entity(self.entity) if self.entity is not None else None
        if state is not None:
            return [float(v) for v in state["position"]]
        return [float(v) for v in (self.attributes.get("ship_position") or [0.0, 0.0, 0.0])[:3]]


def current():
    """The SolSession whose call the current tasklet serves (its
    `session_id`, `attributes`: character_id, ship_id, solar_system_id, role
    ...); LookupError outside a session's call."""
    session = _current.get(None)
    if session is None:
        raise LookupError("not in a session's call")
    return session


class SolSessions:
    """The table; `node_id()` is this sol's node id."""

    service_name = "sessions"

    def __init__(self, services, node_id):
        self.services, self.node_id = services, node_id
        self.by_id = {}
        self.systems = set()  # the systems registered with _movement

    def handlers(self, connection, what):
        """The link's handlers (rpc_endpoint.Endpoint(handlers=...))."""
        return {kinds_pb2.SESSION_CHANGE: lambda payload: self.apply(payload, connection, what)}

    def apply(self, payload, connection, what):
        change = session_pb2.SessionChange()
        try:
            change.ParseFromString(payload)
            changed = {name: rpc_values.from_wire(value) for name, value in change.changed.items()}
        except (google.protobuf.message.DecodeError, rpc_values.WireValueError) as e:
            raise rpc_endpoint.ProtocolViolation("bad SessionChange: %s" % e) from None
        session = self.by_id.get(change.session_id)
        if change.ended or change.sol_node != self.node_id():
            if session is not None:
                self._drop(session, "ended" if change.ended else "moved to sol %d" % change.sol_node)
            return
        if session is None:
            if len(self.by_id) >= MAX_SESSIONS:
                raise rpc_endpoint.ProtocolViolation("more than %d sessions on this sol" % MAX_SESSIONS)
            session = self.by_id[change.session_id] = SolSession(change.session_id, change.proxy_node, connection)
            log.info("session %d arrived from proxy %d (%s)", change.session_id, change.proxy_node, what)
        session.proxy_node, session.link = change.proxy_node, connection
        session.attributes.update(changed)
        for name in change.removed:
            session.attributes.pop(name, None)
        self.place(session)

    def in_system(self, system_id):
        """The sessions in space in `system_id` (its local chat's members)."""
        return [s for s in self.by_id.values() if s.entity is not None
                and s.attributes.get("solar_system_id") == system_id]

    def dock(self, session):
        """Takes the session's ship out of space; returns where it was."""
        position = session.position()
        if session.entity is not None:
            _movement.remove_entity(session.entity)
            session.entity = None
        session.attributes["ship_position"] = position
        return position

    def place(self, session):
        """(Re)registers the session's ship where the session now is: in space."""
        ship, system = session.attributes.get("ship_id"), session.attributes.get("solar_system_id")
        if session.entity is not None:
            _movement.remove_entity(session.entity)
            session.entity = None
        if not isinstance(ship, int) or not isinstance(system, int):
            return
        if system not in self.systems:
            _movement.add_system(system, (-SYSTEM_EXTENT,) * 3, (SYSTEM_EXTENT,) * 3)
            self.systems.add(system)
        position = session.attributes.get("ship_position") or [0.0, 0.0, 0.0]
        try:
            # shared: the link carries every session of its proxy; one client's
            # bad move is dropped and reported (sanction_offenders), never
            # a reason to close the link.
            _movement.add_entity(ship, system, session.link, tuple(float(v) for v in position[:3]), shared=True)
        except (ValueError, TypeError) as e:
            log.warning("session %d: cannot register ship %r in system %d: %s", session.session_id, ship, system, e)
            return
        session.entity = ship

    def sanction_offenders(self):
        """The sessions whose client sent a move the movement system refused
        (docs/movement.md): each one's ship leaves space at once (its later
        moves are dropped as unknown), logged once with the first reason and
        how many of its moves were refused since the last call; returns
        [(session, reason), ...] for the node to ask their proxies to end them."""
        reports = {}  # entity -> [first reason, refused moves]: one sanction and one line per ship
        for entity, reason in _movement.take_offenders():
            report = reports.setdefault(entity, [reason, 0])
            report[1] += 1
        if not reports:
            return []
        sessions = {s.entity: s for s in self.by_id.values() if s.entity in reports}
        sanctioned = []
        for entity, (reason, refused) in reports.items():
            session = sessions.get(entity)
            if session is None:
                log.warning("%d move(s) of entity %d were refused (%s); no session moves it here any more",
                            refused, entity, reason)
                continue
            log.warning("session %d (proxy %d): %d move(s) refused (%s); its ship %d leaves space and its proxy "
                        "is asked to end it", session.session_id, session.proxy_node, refused, reason, entity)
            self.dock(session)
            sanctioned.append((session, reason))
        return sanctioned

    def _drop(self, session, why):
        """The session leaves; its ship's position goes to the ships table."""
        del self.by_id[session.session_id]
        if session.entity is not None:
            position = self.dock(session)
            # A tasklet of its own: the link's reader must not wait on the database.
            uthread.new(save_position, session.attributes.get("ship_id"), session.attributes.get("solar_system_id"),
                        position)
        log.info("session %d left this sol: %s", session.session_id, why)

    def link_closed(self, connection):
        """A proxy's link closed: its sessions are gone from here."""
        for session in [s for s in self.by_id.values() if s.link is connection]:
            self._drop(session, "its proxy's link closed")

    @exposed(role="node")
    def call(self, session_id, service, method, args, kwargs):
        """A session's call, relayed by its proxy: run with the session's role."""
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise rpc_errors.BadArguments("sessions.call: args must be a list and kwargs a dict")
        session = self.by_id.get(session_id)
        if session is None:
            raise rpc_errors.Unavailable("session %d is not on this sol" % session_id)
        roles = rpc_services.caller_roles(session.attributes.get("role", "player"))
        function, signature = self.services.lookup(service, method, roles)
        try:
            signature.bind(None, *args, **kwargs)
        except TypeError as e:
            raise rpc_errors.BadArguments("%s.%s: %s" % (service, method, e)) from None
        token = _current.set(session)
        try:
            return function(*args, **kwargs)
        except rpc_errors.RpcError:
            raise
        except Exception as e:  # the method's own error, as an APPLICATION error for the session
            raise rpc_errors.ApplicationError(str(e), type(e).__name__) from None
        finally:
            _current.reset(token)


def save_position(ship_id, system_id, position):
    """The ship's position to the ships table, if the ship is still in
    `system_id` (a jump may have moved it on since); never raises."""
    try:
        db.execute("UPDATE ships SET x = ?, y = ?, z = ? WHERE id = ? AND system_id = ?",
                   *position, ship_id, system_id)
    except (db.Error, TimeoutError) as e:
        log.warning("ship %s: cannot save its position %r: %s", ship_id, position, e)
