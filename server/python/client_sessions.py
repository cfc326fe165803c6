"""The sessions a proxy holds (docs/sessions.md): one per logged-in client
connection, and one per account across the whole cluster.

The `client_sessions` table (0007) is the cluster's record: an account's row
names its live session and the proxy holding it. begin() replaces the row in
a transaction (the account's key serializes two logins of one account, on
any proxies); a session of this proxy that the row no longer names is ended
at once; one on another proxy is ended by that proxy at its next check()
(every proxy.routes_refresh seconds), which finds the row taken over. A
session ends with a Close frame carrying the reason, then the connection's
close.

A session located in a solar system is routed to the sol that hosts it
(change()): that sol gets a SessionChange (kind 5) over the proxy's link, the
proxy relays the session's calls there (session_calls.py) and forwards its
ship's movement frames there natively (_movement.route_entity). A change of
sol, and the session's end, are announced the same way. When the routes
change under a session (its sol gone, its system moved), follow_routes()
moves it to the system's new sol.
"""

import logging
import secrets
import time

import _movement
import _net
import db
import handshake_pb2
import uthread

import rpc_errors
import rpc_values
import session_pb2

log = logging.getLogger("shard.sessions")

CLOSE_KIND = 12          # docs/protocol.md, "Message kinds"
SESSION_CHANGE_KIND = 5
SESSION_ID_BITS = 47     # session ids fit the header's 48-bit target id
REPLACED = "logged in again elsewhere"


class Session:
    """What the proxy knows of one logged-in client. `attributes` are the
    session's: user, character, solar system, role."""

    def __init__(self, session_id, account_id, user_name, address, connection):
        self.session_id, self.account_id, self.address = session_id, account_id, address
        self.connection = connection
        self.attributes = {"user_id": account_id, "user_name": user_name, "character_id": None,
                           "solar_system_id": None, "role": "player"}
        self.ended = None  # why, once it ended
        self.last_active = time.monotonic()  # the last call from the client (or the login)
        self.sol_node = None  # the sol its solar system is on, once it is in one
        # The link to that sol it was announced over (a new link has not heard
        # of it). Held while the ship is routed over it: _movement holds the
        # link weakly and refuses a move whose link was freed, closing the
        # client; a closed link still held drops the move instead, until
        # follow_routes() moves the session.
        self.sol_link = None

    def touch(self):
        self.last_active = time.monotonic()

    def __repr__(self):
        return "session %d (account %d %s from %s)" % (self.session_id, self.account_id,
                                                        self.attributes["user_name"], self.address)


class ClientSessions:

    def __init__(self, node_id, sols):
        self.node_id, self.sols = node_id, sols  # sols: sol_links.SolLinks
        self.by_id = {}        # session id -> Session
        self.by_account = {}   # account id -> Session

    def begin(self, account_id, user_name, address, connection):
        """A new session for a verified account; the account's previous one
        (on any proxy) is ended: one session per account."""
        session_id = secrets.randbits(SESSION_ID_BITS) | 1  # never 0 ("none" on the wire)
        previous = self.by_account.get(account_id)
        if previous is not None:
            # Before the row names the new session: the sweep (check()) that
            # read it in between would end this one as "logged in again
            # elsewhere". If the write below fails, its row names an ended
            # session until the account's next login, as after a crash.
            self.end(previous, "logged in again from %s" % address, release=False)
        # One statement: the upsert locks the account's row alone (a locking
        # read of an absent row first took a gap lock, and two logins of
        # different accounts deadlocked on it).
        with db.transaction() as t:
            t.execute("INSERT INTO client_sessions (account_id, session_id, proxy_node_id, address)"
                      " VALUES (?, ?, ?, ?) ON DUPLICATE KEY UPDATE session_id = VALUES(session_id),"
                      " proxy_node_id = VALUES(proxy_node_id), address = VALUES(address), started_at = NOW(6)",
                      account_id, session_id, self.node_id, address)
        session = Session(session_id, account_id, user_name, address, connection)
        self.by_id[session_id] = session
        self.by_account[account_id] = session
        log.info("%r began", session)
        return session

    def sol_endpoint(self, session):
        """The RPC endpoint of the link to the session's sol, or None."""
        return None if session.sol_node is None else self.sols.links.get(session.sol_node)

    def change(self, session, changed):
        """Changes the session's attributes and moves its routing to the sol
        of its (new) solar system at once: no other tasklet runs between the
        announcements and the switch (sendpacket does not wait). Raises
        rpc_errors.Unavailable, changing nothing, when no sol serves it or
        the session ended meanwhile (its caller waited on the database)."""
        if session.ended is not None:
            raise rpc_errors.Unavailable("%r ended: %s" % (session, session.ended))
        attributes = dict(session.attributes, **changed)
        system = attributes.get("solar_system_id")
        sol_node = None if system is None else self.sols.routes.get(system)
        link = None if sol_node is None else self.sols.links.get(sol_node)
        if system is not None and link is None:
            raise rpc_errors.Unavailable("no sol serves solar system %d now" % system)
        if link is not None:  # first: if it cannot be told, nothing changes
            self._announce(link, session, sol_node, attributes)
        old = self.sol_endpoint(session)
        if old is not None and session.sol_node != sol_node:
            try:
                self._announce(old, session, sol_node or 0, {})
            except rpc_errors.Unavailable as e:  # its link is gone: so is the session there
                log.info("%r: cannot tell its old sol: %s", session, e)
        _movement.unroute(session.connection)
        ship = attributes.get("ship_id")
        if link is not None and ship is not None:
            _movement.route_entity(session.connection, ship, link.connection, sol_node)
        session.attributes, session.sol_node, session.sol_link = attributes, sol_node, link
        log.info("%r is in solar system %s on sol %s", session, system, sol_node)

    def follow_routes(self):
        """After the proxy read the routes: moves each session whose solar
        system is now served by another sol (its sol gone, the systems
        rebalanced), or whose sol's link was made anew (a sol forgets the
        sessions of a link that closed), to the sol that serves it now,
        with change(). A session whose system has no live linked sol yet
        stays as it is: its calls get Unavailable until one has."""
        for session in list(self.by_id.values()):
            system = session.attributes["solar_system_id"]
            if system is None or session.ended is not None:
                continue
            sol_node = self.sols.routes.get(system)
            link = None if sol_node is None else self.sols.links.get(sol_node)
            if link is None or link is session.sol_link:
                continue
            log.info("%r: solar system %d is on sol %d now (was %s): moving the session there", session, system,
                     sol_node, session.sol_node)
            try:
                self.change(session, {})
            except rpc_errors.Unavailable as e:  # the new link broke meanwhile: the next refresh tries again
                log.warning("%r: cannot move it to sol %d: %s", session, sol_node, e)

    def _announce(self, endpoint, session, sol_node, attributes, ended=False):
        change = session_pb2.SessionChange(session_id=session.session_id, proxy_node=self.node_id,
                                           sol_node=sol_node, ended=ended)
        for name, value in attributes.items():
            rpc_values.to_wire(value, change.changed[name])
        try:
            endpoint.connection.sendpacket(change.SerializeToString(), SESSION_CHANGE_KIND)
        except _net.error as e:
            raise rpc_errors.Unavailable("%s: %s" % (endpoint.what, e)) from None

    def end(self, session, reason, release=True):
        """Ends `session`: a Close frame with `reason`, the connection closed,
        and (release) its row deleted if it is still this session's."""
        if session.ended is not None:
            return
        session.ended = reason
        self.by_id.pop(session.session_id, None)
        if self.by_account.get(session.account_id) is session:
            del self.by_account[session.account_id]
        log.info("%r ended: %s", session, reason)
        self._leave_sol(session)
        try:
            session.connection.blockingsend = True  # the reason goes out before the close
            session.connection.sendpacket(handshake_pb2.Close(code=0, reason=reason).SerializeToString(),
                                          kind=CLOSE_KIND)
        except OSError:
            pass  # already closed by the peer: nobody to tell
        finally:
            session.connection.close()
        if release:
            try:
                db.execute("DELETE FROM client_sessions WHERE account_id = ? AND session_id = ?",
                           session.account_id, session.session_id)
            except (db.Error, TimeoutError) as e:
                # The row stays until the account logs in again, which replaces it.
                log.warning("%r: cannot release its row: %s", session, e)

    def _leave_sol(self, session):
        _movement.unroute(session.connection)
        endpoint = self.sol_endpoint(session)
        session.sol_node = session.sol_link = None
        if endpoint is not None:
            try:
                self._announce(endpoint, session, 0, {}, ended=True)
            except rpc_errors.Unavailable as e:  # the link is gone: so is the session there
                log.info("%r: cannot announce its end: %s", session, e)

    def check(self):
        """Ends this proxy's sessions whose account logged in again elsewhere
        (their row names another session). Only the sessions that began
        before the read: a login whose row was written while it ran is not
        in what it read (seen in login storms: a fresh session ended as
        replaced)."""
        sessions = list(self.by_id.values())  # each one's row was written before it joined by_id
        rows = db.query("SELECT account_id, session_id FROM client_sessions WHERE proxy_node_id = ?", self.node_id)
        current = set(rows)
        for session in sessions:
            if (session.account_id, session.session_id) not in current:
                self.end(session, REPLACED, release=False)

    def end_idle(self, idle_s, now=None):
        """Ends the sessions whose client sent nothing for `idle_s` seconds (0: none)."""
        if not idle_s:
            return
        now = time.monotonic() if now is None else now
        for session in list(self.by_id.values()):
            if now - session.last_active >= idle_s:
                # Its own tasklet: a client that does not read cannot hold up the sweep.
                uthread.new(self.end, session, "idle for %g s" % idle_s)

    def close_all(self, reason):
        """At the proxy's stop (the loop is over: no waiting for writes): every
        connection closed, the rows released."""
        for session in list(self.by_id.values()):
            session.ended = reason
            _movement.unroute(session.connection)
            session.connection.close()
            log.info("%r ended: %s", session, reason)
        self.by_id.clear()
        self.by_account.clear()
        db.execute("DELETE FROM client_sessions WHERE proxy_node_id = ?", self.node_id)
