"""What a logged-in client may call on its proxy (docs/sessions.md): RPC on
the client connection, with the session's role. The proxy's own `session`
service (selecting a character) runs here; a call to any other service is
relayed to the sol that owns the session's solar system (`sessions.call`
there, sol_sessions.py), and its answer or error goes back to the client.
"""

import inspect

import db

import rpc_errors
from rpc_services import Services, exposed

RELAY_TIMEOUT = 10.0  # seconds a relayed call may take on the sol


class SessionService:
    """The proxy's `session` service, one per session."""

    service_name = "session"

    def __init__(self, session, sessions):
        self.session, self.sessions = session, sessions

    @exposed(role="player")
    def select_character(self, character_id):
        """Plays `character_id` (one of the account's): the session enters
        the solar system of its ship. Returns the session's attributes."""
        if not isinstance(character_id, int) or isinstance(character_id, bool):
            raise TypeError("character_id must be an int")
        rows = db.query("SELECT c.id, s.id, s.system_id, s.x, s.y, s.z FROM characters c"
                        " LEFT JOIN ships s ON s.owner_id = c.id WHERE c.id = ? AND c.account_id = ?"
                        " ORDER BY s.id LIMIT 1", character_id, self.session.account_id)
        if not rows:
            raise LookupError("no character %d on this account" % character_id)
        _, ship_id, system_id, x, y, z = rows[0]
        self.sessions.change(self.session, {
            "character_id": character_id, "ship_id": ship_id, "solar_system_id": system_id,
            "ship_position": None if ship_id is None else [x, y, z]})
        return dict(self.session.attributes)


# A relay takes any arguments: the sol binds them to the real method.
_RELAY_SIGNATURE = inspect.signature(lambda self, *args, **kwargs: None)


class SessionServices:
    """The `services` of a client connection's rpc_endpoint.Endpoint: the
    proxy's own for `session`, a relay to the session's sol for the rest.
    Every call counts as the client's activity (the idle timeout)."""

    def __init__(self, session, sessions):
        self.session, self.sessions = session, sessions
        self.local = Services()
        self.local.register(SessionService(session, sessions))

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
