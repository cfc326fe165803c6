"""Server -> client notifications from a sol (docs/services.md): a game
service tells sessions anywhere in the cluster that something happened.

    node.notifier.to_sessions(session_ids, "chat", "message", *args)      # sessions on this sol
    node.notifier.to_characters(character_ids, "market", "trade", *args)  # wherever they play

The client gets a Notification (rpc.proto, kind 9) with `service`, `event`
and `args`. The sol encodes it once and hands it, with the sessions it is
for, to each proxy that holds one of them: a call that wants no answer
(call id 0) to the proxy's `proxy.notify` (proxy_service.py), over the link
that proxy dialled to this sol. The proxy writes the same bytes to each
client connection, checking that the session still plays the character.

Delivery is at most once and never an error for the sender: a session that
is gone (here, or at its proxy), a proxy with no link to this sol, a client
whose send queue is full: the notification is dropped and counted
(`stats()` here, the proxy's `proxy.stats`).
"""

import logging

import _net
import db
import kinds_pb2
import rpc_errors
import rpc_pb2
import rpc_values

log = logging.getLogger("shard.notify")

MAX_TARGETS = 10000  # sessions per notification: a fan-out beyond that is a design error, not a chat


class Notifier:
    """`sessions` is the sol's sol_sessions.SolSessions."""

    def __init__(self, sessions):
        self.sessions = sessions
        self.proxies = {}  # proxy node id -> rpc_endpoint.Endpoint of the link it dialled to this sol
        self.counts = {"notifications": 0, "sent": 0, "dropped": 0}

    # --- the proxies' links -----------------------------------------------------

    def introduce(self, endpoint):
        """Asks the proxy at the other end of a new link who it is (in its
        own tasklet: the link's reader must run to read the answer)."""
        try:
            node_id = endpoint.call("proxy", "node_id")
        except rpc_errors.RpcError as e:
            log.warning("%s: cannot learn the proxy's node id: %s (no notifications through it)", endpoint.what, e)
            return
        if isinstance(node_id, int) and endpoint.closed is None:
            self.proxies[node_id] = endpoint

    def link_closed(self, endpoint):
        for node_id in [n for n, e in self.proxies.items() if e is endpoint]:
            del self.proxies[node_id]

    # --- sending --------------------------------------------------------------------

    def to_sessions(self, session_ids, service, event, *args):
        """Notifies the sessions of `session_ids` that are on this sol."""
        by_proxy = {}
        for session_id in session_ids:
            session = self.sessions.by_id.get(session_id)
            if session is None:
                self.counts["dropped"] += 1
                continue
            by_proxy.setdefault(session.proxy_node, []).append([session_id, 0])
        self._send(by_proxy, service, event, args)

    def to_characters(self, character_ids, service, event, *args):
        """Notifies the sessions playing `character_ids`, on any sol: those
        here from the sol's table, the others from the `client_sessions`
        table (the account's session and its proxy; the proxy checks the
        character)."""
        wanted = set(character_ids)
        by_proxy = {}
        for session in self.sessions.by_id.values():
            character = session.attributes.get("character_id")
            if character in wanted:
                wanted.discard(character)
                by_proxy.setdefault(session.proxy_node, []).append([session.session_id, character])
        if wanted:
            rows = db.query("SELECT c.id, s.session_id, s.proxy_node_id FROM characters c JOIN client_sessions s"
                            " ON s.account_id = c.account_id WHERE c.id IN (%s)" % ",".join("?" * len(wanted)),
                            *sorted(wanted))
            for character, session_id, proxy_node in rows:
                wanted.discard(character)
                by_proxy.setdefault(proxy_node, []).append([session_id, character])
        self.counts["dropped"] += len(wanted)  # characters nobody plays now
        self._send(by_proxy, service, event, args)

    def _send(self, by_proxy, service, event, args):
        note = rpc_pb2.Notification(service=service, event=event)
        for arg in args:
            rpc_values.to_wire(arg, note.args.add())
        self.counts["notifications"] += 1
        for proxy_node, targets in by_proxy.items():
            endpoint = self.proxies.get(proxy_node)
            for start in range(0, len(targets), MAX_TARGETS):
                chunk = targets[start:start + MAX_TARGETS]
                if endpoint is None or not self._cast(endpoint, chunk, note):
                    self.counts["dropped"] += len(chunk)
                else:
                    self.counts["sent"] += len(chunk)

    @staticmethod
    def _cast(endpoint, targets, note):
        call = rpc_pb2.RpcCall(call_id=0, service="proxy", method="notify")  # call id 0: no answer
        rpc_values.to_wire(targets, call.args.add())
        call.args.add().bytes_value = note.SerializeToString()
        try:
            endpoint.connection.sendpacket(call.SerializeToString(), kinds_pb2.RPC_CALL)
        except _net.error as e:
            log.info("%s: notification dropped: %s", endpoint.what, e)
            return False
        return True

    def stats(self):
        return dict(self.counts, proxies=sorted(self.proxies))
