"""A connection between nodes, or from a client, held open until either side
closes it.

A port serves its links with the protocol it is given: node links speak RPC
(rpc_endpoint.py). A link with no protocol (hold(): the client port until
sessions come) closes on the first packet with a logged reason, as on any
unexpected input from the network.
"""

import logging

import _net
import uthread

log = logging.getLogger("shard.link")


def hold(connection, what):
    """Reads `connection` until it closes (parks only this tasklet); returns
    why it closed. `what` names the peer in the logs."""
    try:
        while True:
            packet = connection.recvpacket()
            log.warning("%s: unexpected packet (%d bytes) on a link with no protocol yet; closing", what, len(packet))
            connection.close()
    except _net.error as e:
        return str(e)
    finally:
        connection.close()


class Port:
    """A listening port whose every accepted connection is served by
    `serve(connection, what)` (default hold()), which returns why it closed;
    close() closes the port and them."""

    def __init__(self, listener, what, serve=hold):
        self.listener, self.what, self.serve = listener, what, serve
        self.links = set()

    @property
    def port(self):
        return self.listener.port

    def accept_forever(self):
        while True:
            connection = self.listener.accept()
            self.links.add(connection)
            uthread.new(self._serve, connection)

    def _serve(self, connection):
        peer = "%s from %s:%d" % ((self.what,) + connection.peer)
        log.info("%s accepted", peer)
        try:
            log.info("%s closed: %s", peer, self.serve(connection, peer))
        finally:
            self.links.discard(connection)

    def close(self):
        self.listener.close()
        for connection in list(self.links):
            connection.close()
