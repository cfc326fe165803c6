"""A proxy's view of the sols, from the cluster directory: the routes (which
live sol hosts which solar system, and where each sol is) and one link to
every live sol.

refresh() reads the directory and reconciles: it dials each live sol it has
no link to (a new sol, or one whose link broke: the dial is retried at every
refresh until it works or the sol is gone from the directory) and closes the
link of a sol that is gone. Each link is held by its own tasklet, which
notices when the sol closes it. The links speak RPC (rpc_endpoint.py): the
proxy calls the sols' services through route() and serves its own
`services` to them; each new link is checked with one ping. The links carry
the sessions' SessionChanges (client_sessions.py) and, natively, their ships'
movement (`_movement.proxy_link_handlers()`: the sols' updates go on the IO
thread to the clients).
"""

import logging
import time

import _movement
import _net
import uthread

import cluster_directory
import rpc_endpoint
import rpc_errors
import rpc_services
import system_assignment

log = logging.getLogger("shard.proxy")


class SolLinks:

    def __init__(self, connect_timeout, services):
        self.connect_timeout = connect_timeout
        self.services = services
        self.sols = {}       # node id -> its directory row (live sols)
        self.routes = {}     # system id -> node id
        self.links = {}      # node id -> rpc_endpoint.Endpoint
        self.dialing = set()
        self.unreachable = set()  # logged once per outage
        self.closing = False

    def refresh(self, timeout):
        sols = {node["id"]: node for node in cluster_directory.live_nodes("sol", timeout=timeout)}
        routes = system_assignment.routes(timeout=timeout)
        if routes != self.routes or sols.keys() != self.sols.keys():
            log.info("routes: %s", _describe(routes, sols) or "no live sol")
        self.sols, self.routes = sols, routes
        for node_id, endpoint in list(self.links.items()):
            if node_id not in sols:
                log.info("sol %d is gone from the directory: closing its link", node_id)
                endpoint.close()
        for node_id, sol in sols.items():
            if node_id not in self.links and node_id not in self.dialing:
                self.dialing.add(node_id)
                uthread.new(self._link, sol)

    def _link(self, sol):
        node_id, where = sol["id"], "sol %d (%s) at %s:%d" % (sol["id"], sol["name"], sol["address"], sol["port"])
        try:
            connection = _net.connect(sol["address"], sol["port"], self.connect_timeout, role="proxy",
                                      native=_movement.proxy_link_handlers())
        except (OSError, TimeoutError) as e:  # _net.error is an OSError
            if node_id not in self.unreachable:
                self.unreachable.add(node_id)
                log.warning("cannot reach %s: %s (trying again at each refresh)", where, e)
            return
        finally:
            self.dialing.discard(node_id)
        self.unreachable.discard(node_id)
        if node_id not in self.sols:
            connection.close()  # gone from the directory while we dialed
            return
        endpoint = self.links[node_id] = rpc_endpoint.Endpoint(connection, self.services, "node", "link to " + where)
        log.info("linked to %s", where)
        uthread.new(self._check, node_id, where)
        try:
            why = endpoint.run()
            log.log(logging.INFO if self.closing or node_id not in self.sols else logging.WARNING,
                    "link to %s closed: %s", where, why)
        finally:
            if self.links.get(node_id) is endpoint:
                del self.links[node_id]

    def _check(self, node_id, where):
        """One ping over a new link: the sol's RPC answers."""
        start = time.monotonic()
        try:
            answer = rpc_services.remote_service("ping", node=node_id).ping("link check")
        except rpc_errors.RpcError as e:
            log.warning("ping over the link to %s failed: %s", where, e)
            return
        log.info("ping over the link to %s: answered by node %d in %.1f ms", where, answer["node_id"],
                 (time.monotonic() - start) * 1000)

    def route(self, service, node=None):
        """The endpoint to call `service` on: sol `node`'s link, or (None)
        any live sol's: the lowest node id, until sessions route by system."""
        if node is None:
            node = min(self.links, default=None)
        endpoint = self.links.get(node)
        if endpoint is None:
            raise rpc_errors.Unavailable("no link to %s for service %r" % ("sol %d" % node if node else "any sol",
                                                                          service))
        return endpoint

    def close(self):
        self.closing = True
        for endpoint in list(self.links.values()):
            endpoint.close()


def _describe(routes, sols):
    counts = {}
    for node_id in routes.values():
        counts[node_id] = counts.get(node_id, 0) + 1
    return ", ".join("sol %d (%s) %d systems" % (node_id, sols[node_id]["name"] if node_id in sols else "?",
                                                  counts.get(node_id, 0)) for node_id in sorted(set(sols) | set(counts)))
