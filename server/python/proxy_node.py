"""A proxy node: clients connect to its client port; it learns from the
cluster directory which sol hosts which solar system and keeps a link to
every live sol (sol_links.py), refreshed every proxy.routes_refresh seconds.
"""

import logging

import db
import gameloop
import live_settings
import uthread

import client_sessions
import cluster_membership
import login_server
import proxy_service
import rpc_services
import sol_links

log = logging.getLogger("shard.proxy")


class ProxyNode:

    def __init__(self, prefs):
        self.prefs = prefs
        self.member = None
        self.services = rpc_services.Services()  # what the proxy serves to the sols
        proxy_service.register(self.services, self)
        self.sols = sol_links.SolLinks(prefs["proxy.connect_timeout"], self.services)
        rpc_services.set_router(self.sols.route)
        self.sessions = None
        self.clients = login_server.LoginServer(prefs, None)

    def start(self):
        prefs = self.prefs
        port = self.clients.listen()
        self.member = cluster_membership.Membership(
            "proxy", prefs["node.name"], prefs["proxy.advertise"] or prefs["proxy.address"], port,
            prefs["cluster.heartbeat_interval"], prefs["cluster.node_timeout"])
        self.member.join()
        self.sessions = self.clients.sessions = client_sessions.ClientSessions(self.member.node_id, self.sols)
        log.info("proxy node %d (%s) listening for clients on %s:%d (TLS %s)", self.member.node_id,
                 self.member.name, prefs["proxy.address"], port, prefs["proxy.tls"])
        self.sols.refresh(timeout=self.member.timeout)
        gameloop.register_service(uthread.new(self.member.run))
        gameloop.register_service(uthread.new(self.refresh_forever))
        gameloop.register_service(uthread.new(self.clients.accept_forever))

    def refresh_forever(self):
        while True:
            uthread.Sleep(self.prefs["proxy.routes_refresh"])
            try:
                self.sols.refresh(timeout=self.member.timeout)
            except (db.Error, TimeoutError) as e:
                log.warning("cannot read the routes: %s (keeping the last ones)", e)
            self.sessions.follow_routes()  # sessions in a system that moved go with it
            try:
                self.sessions.check()  # one session per account: logins elsewhere end ours
            except (db.Error, TimeoutError) as e:
                log.warning("cannot check the sessions: %s", e)
            self.sessions.end_idle(live_settings.get("client_idle_timeout_s"))

    def stop(self):
        """After the loop: close the client port and the links, leave the directory."""
        self.clients.close()
        if self.sessions is not None:
            self.sessions.close_all("the proxy stopped")
        self.sols.close()
        if self.member is not None and self.member.node_id is not None:
            self.member.leave()
