"""A proxy's view of the sols, from the cluster directory: the routes (which
live sol hosts which solar system, and where each sol is) and one link to
every live sol.

refresh() reads the directory and reconciles: it dials each live sol it has
no link to (a new sol, or one whose link broke: the dial is retried at every
refresh until it works or the sol is gone from the directory) and closes the
link of a sol that is gone. Each link is held by its own tasklet, which
notices when the sol closes it.
"""

import logging

import _net
import uthread

import cluster_directory
import node_link
import system_assignment

log = logging.getLogger("shard.proxy")


class SolLinks:

    def __init__(self, connect_timeout):
        self.connect_timeout = connect_timeout
        self.sols = {}       # node id -> its directory row (live sols)
        self.routes = {}     # system id -> node id
        self.links = {}      # node id -> connection
        self.dialing = set()
        self.unreachable = set()  # logged once per outage
        self.closing = False

    def refresh(self, timeout):
        sols = {node["id"]: node for node in cluster_directory.live_nodes("sol", timeout=timeout)}
        routes = system_assignment.routes(timeout=timeout)
        if routes != self.routes or sols.keys() != self.sols.keys():
            log.info("routes: %s", _describe(routes, sols) or "no live sol")
        self.sols, self.routes = sols, routes
        for node_id, connection in list(self.links.items()):
            if node_id not in sols:
                log.info("sol %d is gone from the directory: closing its link", node_id)
                connection.close()
        for node_id, sol in sols.items():
            if node_id not in self.links and node_id not in self.dialing:
                self.dialing.add(node_id)
                uthread.new(self._link, sol)

    def _link(self, sol):
        node_id, where = sol["id"], "sol %d (%s) at %s:%d" % (sol["id"], sol["name"], sol["address"], sol["port"])
        try:
            connection = _net.connect(sol["address"], sol["port"], self.connect_timeout)
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
        self.links[node_id] = connection
        log.info("linked to %s", where)
        try:
            why = node_link.hold(connection, "link to " + where)
            log.log(logging.INFO if self.closing or node_id not in self.sols else logging.WARNING,
                    "link to %s closed: %s", where, why)
        finally:
            if self.links.get(node_id) is connection:
                del self.links[node_id]

    def close(self):
        self.closing = True
        for connection in list(self.links.values()):
            connection.close()


def _describe(routes, sols):
    counts = {}
    for node_id in routes.values():
        counts[node_id] = counts.get(node_id, 0) + 1
    return ", ".join("sol %d (%s) %d systems" % (node_id, sols[node_id]["name"] if node_id in sols else "?",
                                                  counts.get(node_id, 0)) for node_id in sorted(set(sols) | set(counts)))
