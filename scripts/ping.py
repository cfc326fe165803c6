"""The ping service: the cheapest round trip through the RPC layer, for
clients (latency, the swarm's ping) and for nodes (a proxy checks each sol
link with it when the link comes up)."""

import time

from rpc_services import exposed


class Ping:
    service_name = "ping"

    def __init__(self, node):
        self.node = node

    @exposed(role=("player", "node"))
    def ping(self, payload=None):
        """Echoes `payload` with who answered and the server's clock."""
        return {"node_id": self.node.member.node_id, "node": self.node.member.name, "time": time.time(),
                "echo": payload}


def register(services, node):
    services.register(Ping(node))
