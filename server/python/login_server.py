"""A proxy's client port: accepts clients (handshake and TLS on the IO
threads, `_net.listen`), one tasklet per client, which runs its login and
then holds its session (docs/sessions.md).

The login: the client's first packet is a LoginRequest (session.proto), sent
within proxy.login_timeout seconds; the proxy checks the throttles, then the
password (accounts.check(): the slow hash on a worker thread, a few at once:
a storm of logins queues, and past proxy.login_queue waiting ones is refused
with a retry time), and answers a LoginReply: ok with the session id, or a
refusal with its reason. A refused
client is closed after the reply. Every byte is hostile: a packet that is not
a well-formed, bounded LoginRequest closes that client only, with a logged
reason. After the login the client speaks RPC with its session's role
(session_calls.py), and its ship's movement frames are forwarded to its sol
natively (`_movement.proxy_handlers()` on this port); a client silent for
the live setting `client_idle_timeout_s` is closed by the proxy's sweep
(proxy_node.py).
"""

import logging

import _movement
import _net
import db
import uthread
from google.protobuf.message import DecodeError

import accounts
import login_throttle
import rpc_endpoint
import rpc_values
import session_calls
import session_pb2

log = logging.getLogger("shard.login")

LOGIN_REPLY_KIND = 4          # docs/protocol.md, "Message kinds"
MAX_LOGIN_BYTES = 4096        # a LoginRequest is a name and a password: far less
MAX_CLIENT_PACKET = 1 << 16   # what the client port accepts at all (until RPC brings bigger ones)
MAX_FIELD_CHARS = 64          # language, client_version
# Calls one client may have served at once (more wait: the proxy stops reading
# it). Their answers come back over the proxy's link to the sol: 64 of the
# largest a client can ask for (a 60 KB echo) stay far under the link's
# 16 MiB send bound, which a client with 1000 could fill, making the sol cut
# the link of every session on this proxy.
CLIENT_MAX_CALLS = 64


class Refused(Exception):
    """A login refused: args (the reason the client reads, the one the log gets)."""


def parse_login(payload):
    """The LoginRequest in `payload`; ValueError with the reason when it is not one."""
    if len(payload) > MAX_LOGIN_BYTES:
        raise ValueError("login packet of %d bytes (at most %d)" % (len(payload), MAX_LOGIN_BYTES))
    request = session_pb2.LoginRequest()
    try:
        request.ParseFromString(payload)
    except (DecodeError, RuntimeWarning) as e:
        raise ValueError("not a LoginRequest: %s" % e) from None
    if request.UnknownFields():
        raise ValueError("not a LoginRequest: unknown fields")
    if not request.user_name or not request.credential:
        raise ValueError("LoginRequest without user_name or credential")
    if len(request.language) > MAX_FIELD_CHARS or len(request.client_version) > MAX_FIELD_CHARS:
        raise ValueError("LoginRequest language or client_version over %d characters" % MAX_FIELD_CHARS)
    try:
        password = request.credential.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("LoginRequest credential is not UTF-8") from None
    return request, password


class LoginServer:

    def __init__(self, prefs, sessions):
        self.prefs, self.sessions = prefs, sessions
        window = prefs["proxy.login_window"]
        self.by_address = login_throttle.Throttle(prefs["proxy.logins_per_address"], window)
        self.by_account = login_throttle.Throttle(prefs["proxy.failures_per_account"], window)
        accounts.gate.configure(prefs["proxy.password_checks"], prefs["proxy.login_queue"])
        self.listener = None
        self.clients = set()

    def listen(self):
        prefs = self.prefs
        tls = prefs["proxy.tls"]
        options = {}
        if tls != "off":
            if not prefs["proxy.tls_cert"] or not prefs["proxy.tls_key"]:
                raise OSError("proxy.tls is %r but proxy.tls_cert or proxy.tls_key is not set "
                              "(ops/devcert.sh makes a development pair; proxy.tls = off for none)" % tls)
            options = {"tls_cert": prefs["proxy.tls_cert"], "tls_key": prefs["proxy.tls_key"],
                       "tls_required": tls == "required"}
        self.listener = _net.listen(prefs["proxy.address"], prefs["proxy.port"], max_packet=MAX_CLIENT_PACKET,
                                    role="proxy", native=_movement.proxy_handlers(), **options)
        return self.listener.port

    def accept_forever(self):
        while True:
            connection = self.listener.accept()
            self.clients.add(connection)
            uthread.new(self._serve, connection)

    def _serve(self, connection):
        peer = "client %s:%d" % connection.peer
        session = None
        try:
            session = self._login(connection, peer)
            if session is not None:
                why = self._hold(session)
                self.sessions.end(session, why)
        except _net.error as e:
            log.info("%s closed: %s", peer, e)
        except (db.Error, TimeoutError) as e:  # the client is closed: it may try again
            log.error("%s: the login failed on the database: %s", peer, e)
        finally:
            if session is not None and session.ended is None:
                self.sessions.end(session, "connection closed")
            connection.close()
            self.clients.discard(connection)

    def _reply(self, connection, ok, reason="", session=None):
        reply = session_pb2.LoginReply(ok=ok, reason=reason)
        if session is not None:
            reply.session_id, reply.user_id = session.session_id, session.account_id
            for name, value in session.attributes.items():
                rpc_values.to_wire(value, reply.attributes[name])
        connection.blockingsend = not ok  # a refusal is written before the close
        connection.sendpacket(reply.SerializeToString(), kind=LOGIN_REPLY_KIND)
        connection.blockingsend = False

    def _login(self, connection, peer):
        """The session, or None after a refusal (the client closed)."""
        try:
            payload = connection.recvpacket(timeout=self.prefs["proxy.login_timeout"])
        except TimeoutError:
            log.warning("%s: no login within %g s; closing", peer, self.prefs["proxy.login_timeout"])
            return None
        try:
            request, password = parse_login(payload)
        except ValueError as e:
            log.warning("%s: %s; closing", peer, e)
            return None
        address, name = connection.peer[0], request.user_name
        try:
            account_id = self._check(address, name, password)
        except Refused as e:
            told, why = e.args
            log.warning("%s: login of %r refused: %s", peer, name, why)
            self._reply(connection, False, told)
            return None
        session = self.sessions.begin(account_id, name, address, connection)
        self._reply(connection, True, session=session)
        return session

    def _check(self, address, name, password):
        """The account id; Refused with the reason the client may know."""
        if self.by_address.blocked(address):
            told = "too many login attempts from %s; retry in %.0f s" % (address, self.by_address.retry_after(address))
            raise Refused(told, "throttled: " + told)
        self.by_address.record(address)
        if self.by_account.blocked(name):
            told = "too many failed logins for this account; retry in %.0f s" % self.by_account.retry_after(name)
            raise Refused(told, "throttled: " + told)
        try:
            account_id, why = accounts.check(name, password)
        except accounts.Busy as e:  # a login storm: not this account's failure
            raise Refused("the server is busy with other logins; retry in %d s" % e.retry_after,
                          "busy: %s" % e) from None
        if account_id is None:
            self.by_account.record(name)
            # The client is not told whether the name exists; the log is.
            raise Refused("banned" if why == "banned" else "wrong user name or password", why)
        self.by_account.forget(name)
        return account_id

    def _hold(self, session):
        """Serves the session's calls until the connection closes; returns
        why. A packet that is not RPC closes it (rpc_endpoint). The idle
        timeout is the proxy's sweep (ClientSessions.end_idle), which closes
        the connection: this reader then ends too."""
        endpoint = rpc_endpoint.Endpoint(session.connection, session_calls.SessionServices(session, self.sessions),
                                         session.attributes["role"], repr(session), max_serving=CLIENT_MAX_CALLS)
        return "connection closed: %s" % endpoint.run()

    def close(self):
        if self.listener is not None:
            self.listener.close()
        for connection in list(self.clients):
            connection.close()
