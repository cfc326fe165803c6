"""The `proxy` service: what a proxy serves to the sols over the links it
dialled to them (node role only).

- node_id(): who this proxy is; a sol asks once per new link, to know which
  link reaches the sessions a proxy holds (sol_notify.py).
- change_session(session_id, changed): a sol moves one of this proxy's
  sessions (solarsystem.jump): ClientSessions.change with the solar system
  and the ship's position only; returns the session's new attributes.
- end_session(session_id, reason): a sol ends one of this proxy's sessions
  (a move it refused: docs/movement.md); the client gets a Close with the
  reason and its connection is closed, as a direct client of the sol would.
- notify(targets, payload): a notification for some of this proxy's
  sessions; `targets` is [[session_id, character_id], ...] (character 0:
  any), `payload` an encoded Notification that goes as is to each client
  connection (kind 9), never decoded here. A session that is gone, that
  plays another character now, or whose client's send queue is full is
  skipped and counted: the sol sent a call that wants no answer.
"""

import logging

import _net
import kinds_pb2

import rpc_errors
from rpc_services import exposed

log = logging.getLogger("shard.proxy")

MAX_TARGETS = 10000
MAX_REASON = 400  # characters of a sol's reason that reach the client
CHANGEABLE = frozenset(("solar_system_id", "ship_position"))  # what a sol may change of a session


class ProxyService:
    service_name = "proxy"

    def __init__(self, node):
        self.node = node  # proxy_node.ProxyNode: its member and sessions
        self.counts = {"delivered": 0, "dropped": 0}

    @exposed(role="node")
    def node_id(self):
        return self.node.member.node_id

    @exposed(role="node")
    def change_session(self, session_id, changed):
        session = self.node.sessions.by_id.get(session_id) if self.node.sessions is not None else None
        if session is None:
            raise rpc_errors.Unavailable("session %r is not on this proxy" % (session_id,))
        if not isinstance(changed, dict) or not changed.keys() <= CHANGEABLE:
            raise rpc_errors.BadArguments("proxy.change_session: changed may name only %s"
                                          % ", ".join(sorted(CHANGEABLE)))
        self.node.sessions.change(session, changed)
        return dict(session.attributes)

    @exposed(role="node")
    def end_session(self, session_id, reason):
        if not isinstance(session_id, int) or not isinstance(reason, str):
            raise rpc_errors.BadArguments("proxy.end_session: session_id must be an int and reason a string")
        session = self.node.sessions.by_id.get(session_id) if self.node.sessions is not None else None
        if session is None:
            return False  # already gone: nothing to end
        self.node.sessions.end(session, reason[:MAX_REASON])
        return True

    @exposed(role="node")
    def notify(self, targets, payload):
        if not isinstance(targets, list) or not isinstance(payload, bytes) or len(targets) > MAX_TARGETS:
            raise rpc_errors.BadArguments("proxy.notify: targets must be a list of at most %d pairs, payload bytes"
                                          % MAX_TARGETS)
        sessions = self.node.sessions.by_id if self.node.sessions is not None else {}
        for target in targets:
            valid = isinstance(target, list) and len(target) == 2 and all(isinstance(v, int) for v in target)
            session = sessions.get(target[0]) if valid else None
            if session is None or (target[1] and session.attributes.get("character_id") != target[1]):
                self.counts["dropped"] += 1
                continue
            try:
                session.connection.sendpacket(payload, kinds_pb2.NOTIFICATION)
                self.counts["delivered"] += 1
            except _net.error as e:  # its client does not read (Backpressure) or is gone: its session ends apart
                self.counts["dropped"] += 1
                log.debug("%r: notification dropped: %s", session, e)

    @exposed(role="node")
    def stats(self):
        """The counts of notifications delivered to clients and dropped."""
        return dict(self.counts)


def register(services, node):
    services.register(ProxyService(node))
