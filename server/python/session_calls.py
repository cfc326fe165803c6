"""What a logged-in client may call on its proxy (docs/sessions.md): RPC on
the client connection, with the session's role. The proxy's own
`characters` service (scripts/characters.py: list, create, select) runs
here, before the session is in any system; a call to any other service is
relayed to the sol that owns the session's solar system (`sessions.call`
there, sol_sessions.py), and its answer or error goes back to the client.
"""

import inspect

import characters
import rpc_errors
from rpc_services import Services

RELAY_TIMEOUT = 10.0  # seconds a relayed call may take on the sol


# A relay takes any arguments: the sol binds them to the real method.
_RELAY_SIGNATURE = inspect.signature(lambda self, *args, **kwargs: None)


class SessionServices:
    """The `services` of a client connection's rpc_endpoint.Endpoint: the
    proxy's own (`characters`), a relay to the session's sol for the rest.
    Every call counts as the client's activity (the idle timeout)."""

    def __init__(self, session, sessions):
        self.session, self.sessions = session, sessions
        self.local = Services()
        characters.register(self.local, session, sessions)

    def lookup(self, service, method, roles):
        self.session.touch()
        if service in self.local.by_name:
            return self.local.lookup(service, method, roles)
        return (lambda *args, **kwargs: self.relay(service, method, args, kwargs)), _RELAY_SIGNATURE

    def relay(self, service, method, args, kwargs):
        endpoint = self.sessions.sol_endpoint(self.session)
        if endpoint is None and self.session.sol_node is not None:  # its sol died: follow_routes() moves it soon
            raise rpc_errors.Unavailable("%s.%s: sol %d, which hosts solar system %s, is unreachable; the session "
                                         "moves to the system's new sol within seconds: retry"
                                         % (service, method, self.session.sol_node,
                                            self.session.attributes["solar_system_id"]))
        if endpoint is None:
            raise rpc_errors.Unavailable("%s.%s: the session is in no solar system a sol serves now "
                                         "(select a character first)" % (service, method))
        return endpoint.call("sessions", "call", (self.session.session_id, service, method, list(args), kwargs),
                             timeout=RELAY_TIMEOUT)
