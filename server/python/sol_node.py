"""A sol node: hosts the solar systems the cluster directory assigns it.

It listens on its node port (proxies connect there), registers in the
directory with the address others reach it at, and with each heartbeat
rebalances the systems whenever the set of live sols changed or a system
has no live host (system_assignment.py).
"""

import logging

import _movement
import _net
import gameloop
import uthread

import cluster_membership
import node_link
import rpc_endpoint
import rpc_errors
import rpc_services
import sol_notify
import sol_sessions
import system_assignment

# The game services (scripts/) a sol serves to the nodes linked to it.
SERVICE_MODULES = ("ping", "solarsystem", "chat", "market")

log = logging.getLogger("shard.sol")


class SolNode:

    def __init__(self, prefs):
        self.prefs = prefs
        self.port = None
        self.member = None
        self.known_sols = []
        self.services = rpc_services.Services()
        self.sessions = sol_sessions.SolSessions(self.services, lambda: self.member.node_id)
        self.services.register(self.sessions)
        # What game services notify clients through (docs/services.md).
        self.notifier = sol_notify.Notifier(self.sessions)

    def serve_link(self, connection, what):
        """A proxy's link: RPC, the proxy calling with the node role, and the
        SessionChanges of its sessions (sol_sessions.py); the sol's
        notifications to the proxy's clients go back on it (sol_notify.py)."""
        endpoint = rpc_endpoint.Endpoint(connection, self.services, "node", what,
                                         handlers=self.sessions.handlers(connection, what))
        uthread.new(self.notifier.introduce, endpoint)
        try:
            return endpoint.run()
        finally:
            self.notifier.link_closed(endpoint)
            self.sessions.link_closed(connection)

    def start(self):
        prefs = self.prefs
        self.services.load(SERVICE_MODULES, self)
        # The links' movement frames go to the native movement system (docs/movement.md).
        _movement.set_update_interval(prefs["sol.movement_update_interval"])
        listener = _net.listen(prefs["sol.address"], prefs["sol.port"], native=_movement.handlers())
        self.port = node_link.Port(listener, "node link", self.serve_link)
        self.member = cluster_membership.Membership(
            "sol", prefs["node.name"], prefs["sol.advertise"] or prefs["sol.address"], self.port.port,
            prefs["cluster.heartbeat_interval"], prefs["cluster.node_timeout"], on_beat=self.on_beat)
        self.member.join()
        self.rebalance()
        log.info("sol node %d (%s) listening on %s:%d", self.member.node_id, self.member.name,
                 prefs["sol.address"], self.port.port)
        gameloop.register_service(uthread.new(self.member.run))
        gameloop.register_service(uthread.new(self.port.accept_forever))

    def on_beat(self, expired):
        for session, reason in self.sessions.sanction_offenders():
            uthread.new(self.end_at_proxy, session, reason)
        if expired or system_assignment.check_needed(self.known_sols, timeout=self.member.timeout):
            self.rebalance()

    def end_at_proxy(self, session, reason):
        """Asks the session's proxy to end it: a move of its client was refused
        here (its proxy holds the client's connection)."""
        proxy = self.notifier.proxies.get(session.proxy_node)
        if proxy is None:
            log.warning("session %d: no link to its proxy %d to end it", session.session_id, session.proxy_node)
            return
        try:
            proxy.call("proxy", "end_session", (session.session_id, "movement refused: %s" % reason))
        except rpc_errors.RpcError as e:
            log.warning("session %d: its proxy %d did not end it: %s", session.session_id, session.proxy_node, e)

    def rebalance(self):
        moves, self.known_sols = system_assignment.rebalance()
        if moves:
            mine = sorted(s for s, node in moves.items() if node == self.member.node_id)
            log.info("systems reassigned: %d moved, %d of them to this node %s", len(moves), len(mine), mine)
        return moves

    def stop(self):
        """After the loop: leave the directory (the systems go to the other
        sols at once), close the port and the links."""
        if self.port is not None:
            self.port.close()
        if self.member is not None and self.member.node_id is not None:
            self.member.leave()
            if self.member.lost is None:
                self.rebalance()
