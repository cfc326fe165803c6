"""A node's life in the cluster directory: register, heartbeat, watch the
others, leave.

    member = Membership("sol", "sol-1", address, port, interval=1.0, timeout=10.0, on_beat=hook)
    member.join()                  # registers: member.node_id
    gameloop.register_service(uthread.new(member.run))
    ...
    member.leave()                 # after the loop: marked gone at once

Every `interval` seconds run() records a heartbeat, marks gone every node
(any role) late by more than `timeout` (releasing a gone proxy's client
sessions), then calls on_beat(expired). If this node finds itself marked
gone (it was stalled past the timeout: the cluster moved its work
elsewhere), it must not go on as if it still held anything:
run() records why in `lost` and stops the game loop. A failing database only
logs: the next beat tries again, and past the timeout the others mark this
node gone.
"""

import logging
import os
import socket
import time

import db
import gameloop
import uthread

import cluster_directory

log = logging.getLogger("shard.cluster")


def default_name(role):
    """A node's name when node.name is empty: <role>-<host>-<pid>."""
    return "%s-%s-%d" % (role, socket.gethostname(), os.getpid())


class Membership:

    def __init__(self, role, name, address, port, interval, timeout, on_beat=None):
        self.role, self.address, self.port = role, address, port
        self.name = name
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.interval, self.timeout = interval, timeout
        self.on_beat = on_beat
        self.node_id = None
        self.lost = None  # why this node was dropped from the cluster, if it was

    def join(self):
        self._gone(cluster_directory.expire_late(self.timeout))
        self.node_id = cluster_directory.register(self.role, self.name, self.address, self.port, self.host,
                                                  self.pid, self.timeout)
        log.info("registered as %s node %d (%s) at %s:%d", self.role, self.node_id, self.name, self.address,
                 self.port)
        # Registering may have marked this name's dead predecessor gone
        # ("process gone": a proxy restarted by its supervisor before the
        # timeout), and an earlier release may have failed: any gone proxy's rows.
        self._release_sessions()
        return self.node_id

    def run(self):
        next_beat = time.monotonic()
        while True:
            # After a stall, the next beat is now, not a burst to catch up.
            next_beat = max(next_beat + self.interval, time.monotonic())
            uthread.Sleep(max(0.0, next_beat - time.monotonic()))
            try:
                self.beat()
            except cluster_directory.MarkedGone as e:
                self.lost = str(e)
                log.error("%s: the cluster went on without this node; stopping", e)
                gameloop.stop()
                return
            except (db.Error, TimeoutError) as e:
                log.warning("heartbeat of node %d failed: %s", self.node_id, e)

    def beat(self):
        # A call slower than the timeout is pointless: the others have
        # given up on this node by then.
        cluster_directory.heartbeat(self.node_id, timeout=self.timeout)
        expired = cluster_directory.expire_late(self.timeout, statement_timeout=self.timeout)
        self._gone(expired)
        if self.on_beat is not None:
            self.on_beat(expired)

    def _gone(self, expired):
        """The nodes this node just marked gone: logged; if a proxy is among
        them, its client sessions released."""
        for node in expired:
            log.warning("%s node %d (%s) is gone: no heartbeat for %.1f s", node["role"], node["id"], node["name"],
                        self.timeout)
        if any(node["role"] == "proxy" for node in expired):
            self._release_sessions()

    def _release_sessions(self):
        """Deletes the client_sessions rows of gone proxies: their clients are
        disconnected, and the rows would otherwise say those accounts are
        logged in until each logs in again."""
        released = db.execute("DELETE s FROM client_sessions s JOIN cluster_nodes n ON n.id = s.proxy_node_id"
                              " WHERE n.gone_at IS NOT NULL", timeout=self.timeout).rowcount
        if released:
            log.info("released %d client sessions of gone proxies", released)

    def leave(self):
        """Marks this node gone now (a clean stop), unless it already was."""
        if self.node_id is not None and self.lost is None:
            cluster_directory.mark_gone(self.node_id, cluster_directory.STOPPED)
            log.info("left the cluster: node %d (%s) marked gone", self.node_id, self.name)
