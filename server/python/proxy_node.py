"""A proxy node: clients connect to its client port; it learns from the
cluster directory which sol hosts which solar system and keeps a link to
every live sol (sol_links.py), refreshed every proxy.routes_refresh seconds.
"""

import logging

import _net
import db
import gameloop
import uthread

import cluster_membership
import node_link
import rpc_services
import sol_links

log = logging.getLogger("shard.proxy")


class ProxyNode:

    def __init__(self, prefs):
        self.prefs = prefs
        self.port = None
        self.member = None
        self.services = rpc_services.Services()  # what the proxy serves to the sols
        self.sols = sol_links.SolLinks(prefs["proxy.connect_timeout"], self.services)
        rpc_services.set_router(self.sols.route)

    def start(self):
        prefs = self.prefs
        self.port = node_link.Port(_net.listen(prefs["proxy.address"], prefs["proxy.port"]), "client")
        self.member = cluster_membership.Membership(
            "proxy", prefs["node.name"], prefs["proxy.advertise"] or prefs["proxy.address"], self.port.port,
            prefs["cluster.heartbeat_interval"], prefs["cluster.node_timeout"])
        self.member.join()
        log.info("proxy node %d (%s) listening for clients on %s:%d", self.member.node_id, self.member.name,
                 prefs["proxy.address"], self.port.port)
        self.sols.refresh(timeout=self.member.timeout)
        gameloop.register_service(uthread.new(self.member.run))
        gameloop.register_service(uthread.new(self.refresh_forever))
        gameloop.register_service(uthread.new(self.port.accept_forever))

    def refresh_forever(self):
        while True:
            uthread.Sleep(self.prefs["proxy.routes_refresh"])
            try:
                self.sols.refresh(timeout=self.member.timeout)
            except (db.Error, TimeoutError) as e:
                log.warning("cannot read the routes: %s (keeping the last ones)", e)

    def stop(self):
        """After the loop: close the client port and the links, leave the directory."""
        if self.port is not None:
            self.port.close()
        self.sols.close()
        if self.member is not None and self.member.node_id is not None:
            self.member.leave()
