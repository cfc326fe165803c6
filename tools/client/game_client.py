"""A game client of the shard, written as a third party would write one: the
protocol (docs/protocol.md, docs/sessions.md, docs/rpc.md, docs/movement.md)
spoken only through the classes stock `protoc --python_out` generates from
netproto/proto/*.proto (build/netproto/python), the standard library
(socket, ssl, struct, zlib) and tools/wire.py, the stdlib-only reference frame
codec. Nothing of the server's Python is imported; values have their own
conversion (wire_values.py).

    client = game_client.connect("127.0.0.1", 26000, ca_file="build/devcert/dev.crt")
    client.login("alice", "secret")
    attributes = client.call("characters", "select", character_id)
    client.call("ping", "ping", "hello")              # -> {"node_id", "node", "time", "echo"}
    client.move(attributes["ship_id"], (1.0, 0, 0), (1.0, 0, 0))
    client.poll(1.0)                                   # read what arrives for up to 1 s
    client.notifications, client.moves                 # what came meanwhile (deques)

One client is driven by one thread or tasklet: there is no reader thread.
Whatever the client waits for (a call's answer, `poll`, `wait_*`) it reads
the connection meanwhile, answers the server's heartbeats, sends its own
when idle, and files notifications and movement updates (in the deques, or
to the callbacks given). Under /usr/bin/python3.11 the sockets block the
thread; inside `shard python` the engine's tasklet sockets (docs/sockets.md)
make the same calls block only the calling tasklet, so one process runs
thousands of clients as tasklets (swarm.py).

Everything from the server is checked as hostile input: frame sizes against
the negotiated limits before reading, every payload parsed as the message its
kind names, values bounded; a violation closes the connection and raises
ProtocolError with the reason. Every wait is bounded by a timeout.
"""

import collections
import itertools
import os
import socket
import ssl
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (HERE, os.path.dirname(HERE)):  # wire_values.py here, wire.py in tools/
    if _path not in sys.path:
        sys.path.insert(0, _path)

import wire  # noqa: E402
import wire_values  # noqa: E402

DEFAULT_PROTOS = os.path.join(os.path.dirname(os.path.dirname(HERE)), "build", "netproto", "python")
MAX_FRAME_BYTES = 1 << 20          # what this client accepts at most, whatever the server offers
MAX_DECOMPRESSED_BYTES = 4 << 20
HANDSHAKE_FRAME_BYTES = 4096       # the protocol's bound on a handshake frame
RECV_BYTES = 65536
DEFAULT_TIMEOUT_S = 10.0
KEEP = 10_000                      # notifications and moves kept when nobody drains them

_pb = {}


def load_protos(path=None):
    """Imports the protoc-generated modules from `path` (default: $SHARD_PROTOS,
    else this checkout's build/netproto/python). Idempotent."""
    if _pb:
        return
    path = path or os.environ.get("SHARD_PROTOS") or DEFAULT_PROTOS
    if not os.path.isfile(os.path.join(path, "rpc_pb2.py")):
        raise FileNotFoundError("no protoc-generated *_pb2.py in %s (build the project, or set SHARD_PROTOS)" % path)
    wire.load_protos(path)
    import handshake_pb2
    import movement_pb2
    import rpc_pb2
    import session_pb2
    _pb.update(handshake=handshake_pb2, movement=movement_pb2, rpc=rpc_pb2, session=session_pb2)


# --- errors -------------------------------------------------------------------

class ClientError(Exception):
    """Base of this module's errors."""


class HandshakeRefused(ClientError):
    """The server refused the Hello (its reason is the message)."""


class ProtocolError(ClientError, ConnectionError):
    """The server broke the protocol; the connection is closed."""


class Disconnected(ClientError, ConnectionError):
    """The connection is gone. `reason`: the server's Close reason, if it sent one."""

    def __init__(self, message, reason=None):
        super().__init__(message if reason is None else "%s: %s" % (message, reason))
        self.reason = reason


class TlsError(ClientError, ConnectionError):
    """The TLS handshake failed (certificate not trusted, wrong name, ...)."""


class LoginFailed(ClientError):
    """The server refused the login; `reason` is its LoginReply's."""

    def __init__(self, reason):
        super().__init__("login refused: %s" % reason)
        self.reason = reason


class RpcError(ClientError):
    """A call answered with an RpcError: `kind` its name (e.g. "UNAVAILABLE",
    "APPLICATION"), `code` its number, `type` the exception's type name (for
    APPLICATION), `message`, `details` (a plain value or None)."""

    def __init__(self, kind, code, type_, message, details=None):
        super().__init__("%s%s: %s" % (kind, " " + type_ if type_ else "", message))
        self.kind, self.code, self.type, self.message, self.details = kind, code, type_, message, details


class CallTimeout(ClientError, TimeoutError):
    """No answer within the call's timeout (the call may still run on the server)."""


Notification = collections.namedtuple("Notification", "service event args")
Move = collections.namedtuple("Move", "entity_id position velocity heading sequence timestamp_us")


# --- the client ----------------------------------------------------------------

def connect(host, port, **options):
    """A connected GameClient (the handshake done, TLS when `ca_file` or `ssl_context` is given)."""
    return GameClient(host, port, **options)


class GameClient:
    """One connection to a proxy's client port. Options:

    ca_file / ssl_context: TLS (required) verified against that CA (the
        certificate must name `host`); neither: a plain connection.
    timeout: the default bound of each call, the connection and the handshake (s).
    compression: codecs offered, a tuple of "zlib", "snappy" (pure Python: slow).
    on_notification(Notification), on_move(Move): callbacks instead of the deques.
    source_address: the local address to connect from (a swarm spreads its
        bots over 127.x.y.z: a proxy takes at most 256 connections per address).
    """

    def __init__(self, host, port, *, ca_file=None, ssl_context=None, timeout=DEFAULT_TIMEOUT_S,
                 compression=("zlib",), on_notification=None, on_move=None, keep=KEEP, protos=None,
                 source_address=None, software="shard game_client.py"):
        load_protos(protos)
        self.host, self.port, self.timeout = host, port, timeout
        self.on_notification, self.on_move = on_notification, on_move
        self.notifications = collections.deque(maxlen=keep)
        self.moves = collections.deque(maxlen=keep)
        self.counts = collections.Counter()      # frames received per kind name, moves sent
        self.session_id = self.user_id = None
        self.attributes = {}
        self.close_reason = None                 # the server's Close frame, if one came
        self.heartbeat_rtt = None                # seconds, from the last echoed heartbeat
        self._frames = collections.deque()       # decoded, not yet handled
        self._answers = {}                       # call id -> result or RpcError
        self._pending = set()
        self._login_reply = None
        self._call_ids = itertools.count(1)
        self._nonces = itertools.count(1)
        self._sequences = {}
        self._failure = None                     # the error every later use raises
        if ssl_context is None and ca_file is not None:
            ssl_context = ssl.create_default_context(cafile=ca_file)
            ssl_context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=None if source_address is None else (source_address, 0))
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._handshake(ssl_context, compression, software)
        except ssl.SSLError as e:  # the certificate, the name, the version: nothing to retry
            self.sock.close()
            raise TlsError("TLS handshake with %s:%d failed: %s" % (host, port, e)) from None
        except (ClientError, socket.timeout):
            self.sock.close()
            raise
        except OSError as e:
            self.sock.close()
            raise Disconnected("the connection failed: %s; during the handshake" % e) from None
        except BaseException:
            self.sock.close()
            raise
        self._last_send = time.monotonic()

    # --- handshake ----------------------------------------------------------

    def _handshake(self, ssl_context, compression, software):
        hs = _pb["handshake"]
        tls = ssl_context is not None
        codecs = [{"zlib": hs.COMPRESSION_ZLIB, "snappy": hs.COMPRESSION_SNAPPY}[c] for c in compression]
        hello = hs.Hello(min_version=1, max_version=1, compression=codecs, tls_supported=tls, tls_required=tls,
                         role=hs.ROLE_CLIENT, software=software, max_frame_bytes=MAX_FRAME_BYTES)
        self.sock.sendall(wire.encode_message(wire.Header(priority=wire.Priority.CONTROL), hello))
        # Exactly the reply's bytes: TLS, if agreed, starts right after them.
        frame = self._read_handshake_frame()
        if frame.header.kind != wire.Kind.HELLO_REPLY:
            raise ProtocolError("handshake: the server answered a frame of kind %d, not a HelloReply"
                                % frame.header.kind)
        reply = self._parse(frame)
        if not reply.accepted:
            raise HandshakeRefused("the server refused the connection: %s" % reply.reason)
        if reply.tls != tls:
            raise ProtocolError("handshake: TLS %s but the server answered tls=%s"
                                % ("required" if tls else "not offered", reply.tls))
        if reply.compression not in (hs.COMPRESSION_NONE, *codecs):
            raise ProtocolError("handshake: the server picked codec %d, which was not offered" % reply.compression)
        if tls:
            self.sock = ssl_context.wrap_socket(self.sock, server_hostname=self.host)
        self.negotiated = reply
        self.limits = wire.Limits(max_frame_bytes=min(reply.max_frame_bytes or MAX_FRAME_BYTES, MAX_FRAME_BYTES),
                                  max_decompressed_bytes=min(reply.max_decompressed_bytes or MAX_DECOMPRESSED_BYTES,
                                                             MAX_DECOMPRESSED_BYTES))
        self.codec = wire.Codec(reply.compression)
        self.threshold = reply.compress_threshold
        self.heartbeat_interval = reply.heartbeat_interval_ms / 1000.0 or None
        self.decoder = wire.Decoder(self.limits, allowed_codecs=(wire.Codec.NONE, self.codec))

    def _read_handshake_frame(self):
        try:
            prefix = self._recv_exactly(wire.LENGTH_BYTES)
        except socket.timeout:
            raise CallTimeout("handshake: no HelloReply within %g s" % self.timeout) from None
        length = int.from_bytes(prefix, "little")
        if not wire.HEADER_BYTES <= length <= HANDSHAKE_FRAME_BYTES:
            raise ProtocolError("handshake: a frame of %d bytes (the protocol allows %d..%d)"
                                % (length, wire.HEADER_BYTES, HANDSHAKE_FRAME_BYTES))
        try:
            frames = wire.Decoder(wire.Limits(HANDSHAKE_FRAME_BYTES), (wire.Codec.NONE,)).feed(
                prefix + self._recv_exactly(length))
        except wire.WireError as e:
            raise ProtocolError("handshake: %s" % e) from None
        except socket.timeout:
            raise CallTimeout("handshake: the HelloReply did not come whole within %g s" % self.timeout) from None
        return frames[0]

    def _recv_exactly(self, n):
        data = bytearray()
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise Disconnected("the server closed the connection during the handshake")
            data += chunk
        return bytes(data)

    # --- the session ----------------------------------------------------------

    def login(self, name, password, *, language="", client_version="", timeout=None):
        """Logs in; returns the LoginReply's fields as a dict (ok, reason,
        session_id, user_id, attributes). LoginFailed when refused (the server
        then closes the connection)."""
        request = _pb["session"].LoginRequest(user_name=name, credential=password.encode("utf-8"),
                                              language=language, client_version=client_version)
        self._send(wire.Kind.LOGIN, request)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while self._login_reply is None:
            if not self._read_one(deadline):
                raise CallTimeout("login: no LoginReply within %g s" % (self.timeout if timeout is None else timeout))
        reply, self._login_reply = self._login_reply, None
        if not reply.ok:
            self.close()
            raise LoginFailed(reply.reason)
        self.session_id, self.user_id = reply.session_id, reply.user_id
        self.attributes = self._values(reply.attributes)
        return {"ok": reply.ok, "reason": reply.reason, "session_id": reply.session_id, "user_id": reply.user_id,
                "attributes": dict(self.attributes)}

    def call(self, service, method, *args, timeout=None, **kwargs):
        """`service.method(*args, **kwargs)` on the server: its result, or
        RpcError with the server's kind, type and message; CallTimeout when
        no answer comes within `timeout` seconds (default: the client's)."""
        timeout = self.timeout if timeout is None else timeout
        message = _pb["rpc"].RpcCall(call_id=next(self._call_ids), service=service, method=method,
                                     timeout_ms=max(1, int(timeout * 1000)))
        for arg in args:
            wire_values.fill(arg, message.args.add())
        for key, value in kwargs.items():
            wire_values.fill(value, message.kwargs[key])
        call_id = message.call_id
        self._pending.add(call_id)
        try:
            self._send(wire.Kind.RPC_CALL, message, dest=wire.Dest.SOL)
            deadline = time.monotonic() + timeout
            while call_id not in self._answers:
                if not self._read_one(deadline):
                    raise CallTimeout("%s.%s: no answer within %g s" % (service, method, timeout))
            outcome = self._answers.pop(call_id)
        finally:
            self._pending.discard(call_id)
        if isinstance(outcome, RpcError):
            raise outcome
        return outcome

    def move(self, ship_id, position, velocity=(0.0, 0.0, 0.0), sequence=None, heading=0.0):
        """Sends a native Movement frame for `ship_id` (docs/movement.md): the
        out-of-band header names the entity, so the proxy forwards it to the
        owning sol without Python. `sequence` defaults to the last one + 1.
        Returns the sequence sent."""
        sequence = self._sequences.get(ship_id, 0) + 1 if sequence is None else sequence
        self._sequences[ship_id] = sequence
        (x, y, z), (vx, vy, vz) = position, velocity
        message = _pb["movement"].Movement(entity_id=ship_id, x=x, y=y, z=z, vx=vx, vy=vy, vz=vz, heading=heading,
                                           sequence=sequence, timestamp_us=int(time.time() * 1e6))
        self._send(wire.Kind.MOVEMENT, message, priority=wire.Priority.HIGH, dest=wire.Dest.ENTITY,
                   target=ship_id, native=True)
        self.counts["moves_sent"] += 1
        return sequence

    # --- reading ----------------------------------------------------------------

    def poll(self, timeout=0.0):
        """Reads and files what arrives within `timeout` seconds (0: only
        what is already there); returns how many frames came."""
        deadline = time.monotonic() + timeout
        handled = 0
        while self._read_one(deadline):
            handled += 1
        return handled

    def wait_notification(self, service=None, event=None, timeout=None):
        """The first kept notification of `service`/`event` (removed from
        `notifications`), waiting up to `timeout` s; TimeoutError if none."""
        return self._wait(self.notifications, lambda n: (service in (None, n.service) and event in (None, n.event)),
                          timeout, "a notification %s.%s" % (service or "*", event or "*"))

    def wait_move(self, entity_id=None, timeout=None):
        """The first kept movement update (of `entity_id`, if given), removed from `moves`."""
        return self._wait(self.moves, lambda m: entity_id in (None, m.entity_id), timeout,
                          "a movement update%s" % ("" if entity_id is None else " of entity %d" % entity_id))

    def _wait(self, queue, match, timeout, what):
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            for item in queue:
                if match(item):
                    queue.remove(item)
                    return item
            if not self._read_one(deadline):
                raise TimeoutError("%s did not come within %g s" % (what, timeout))

    def pending(self):
        """Whether frames are already read and decoded, or TLS holds bytes
        the kernel no longer shows (check before select() on fileno())."""
        return bool(self._frames) or (isinstance(self.sock, ssl.SSLSocket) and self.sock.pending() > 0)

    def fileno(self):
        return self.sock.fileno()

    def _read_one(self, deadline):
        """Handles one frame; False when none came by `deadline` (one read is
        always tried, so a past deadline still takes what is already there)."""
        first = True
        while not self._frames:
            if self._failure is not None:
                raise self._failure
            now = time.monotonic()
            if not first and now >= deadline:
                return False
            first = False
            wait = max(0.0, deadline - now)
            if self.heartbeat_interval:
                self._heartbeat_if_due(now)
                wait = min(wait, max(0.0, self._last_send + self.heartbeat_interval - now))
            data = self._recv(wait)
            if data is None:
                continue
            if not data:
                self._fail(Disconnected("the server closed the connection", self.close_reason))
            try:
                self._frames.extend(self.decoder.feed(data))
            except wire.WireError as e:
                self._fail(ProtocolError("the server sent a bad frame: %s" % e))
        self._handle(self._frames.popleft())
        return True

    def _recv(self, timeout):
        """Bytes read within `timeout` (b"" at the end of the stream), None if none came."""
        try:
            self.sock.settimeout(timeout if timeout > 0 else 0.0)
            return self.sock.recv(RECV_BYTES)
        except (socket.timeout, BlockingIOError, ssl.SSLWantReadError):
            return None
        except OSError as e:
            self._fail(Disconnected("the connection failed: %s" % e, self.close_reason))

    def _handle(self, frame):
        kind = frame.header.kind
        self.counts[wire.Kind(kind).name] += 1
        if kind == wire.Kind.MOVEMENT:
            m = self._parse(frame)
            move = Move(m.entity_id, (m.x, m.y, m.z), (m.vx, m.vy, m.vz), m.heading, m.sequence, m.timestamp_us)
            (self.on_move or self.moves.append)(move)
        elif kind == wire.Kind.RPC_REPLY:
            reply = self._parse(frame)
            if reply.call_id in self._pending:  # a late answer to a call that timed out is dropped
                self._answers[reply.call_id] = self._value(reply.result)
        elif kind == wire.Kind.RPC_ERROR:
            e = self._parse(frame)
            if e.call_id in self._pending:
                kind_name = _pb["rpc"].RpcError.Kind.Name(e.kind) if e.kind in _pb["rpc"].RpcError.Kind.values() \
                    else "KIND_%d" % e.kind
                details = self._value(e.details) if e.HasField("details") else None
                self._answers[e.call_id] = RpcError(kind_name, e.kind, e.type, e.message, details)
        elif kind == wire.Kind.NOTIFICATION:
            n = self._parse(frame)
            note = Notification(n.service, n.event, [self._value(v) for v in n.args])
            (self.on_notification or self.notifications.append)(note)
        elif kind == wire.Kind.HEARTBEAT:
            beat = self._parse(frame)
            if beat.echo:
                self.heartbeat_rtt = max(0.0, time.monotonic() - beat.sent_us / 1e6)
            else:
                self._send(wire.Kind.HEARTBEAT, _pb["handshake"].Heartbeat(nonce=beat.nonce, sent_us=beat.sent_us,
                                                                           echo=True),
                           priority=wire.Priority.CONTROL)
        elif kind == wire.Kind.LOGIN_REPLY:
            self._login_reply = self._parse(frame)
        elif kind == wire.Kind.CLOSE:
            self.close_reason = self._parse(frame).reason or "closed"
        else:
            self._fail(ProtocolError("the server sent a message of kind %d (%s), which has no place on a client "
                                     "connection" % (kind, wire.Kind(kind).name)))

    def _parse(self, frame):
        try:
            return wire.parse_message(frame)
        except wire.WireError as e:
            self._fail(ProtocolError("the server sent a bad %s: %s" % (wire.Kind(frame.header.kind).name, e)))

    def _value(self, value):
        try:
            return wire_values.read(value)
        except wire_values.BadValue as e:
            self._fail(ProtocolError("the server sent a bad value: %s" % e))

    def _values(self, mapping):
        return {key: self._value(value) for key, value in mapping.items()}

    # --- sending ------------------------------------------------------------

    def _send(self, kind, message, *, priority=wire.Priority.NORMAL, dest=wire.Dest.PEER, target=0, native=False):
        if self._failure is not None:
            raise self._failure
        header = wire.Header(kind=kind, native=native, priority=priority, dest_kind=dest, target_id=target)
        data = wire.encode_frame(header, message.SerializeToString(), codec=self.codec, threshold=self.threshold,
                                 limits=self.limits)
        try:
            self.sock.settimeout(self.timeout)
            self.sock.sendall(data)
        except OSError as e:  # socket.timeout included: the stream is out of step after a partial write
            self._fail(Disconnected("sending failed: %s" % e, self.close_reason))
        self._last_send = time.monotonic()

    def _heartbeat_if_due(self, now):
        if now - self._last_send >= self.heartbeat_interval:
            self._send(wire.Kind.HEARTBEAT, _pb["handshake"].Heartbeat(nonce=next(self._nonces),
                                                                       sent_us=int(now * 1e6)),
                       priority=wire.Priority.CONTROL)

    def _fail(self, error):
        """Closes the connection; `error` is raised now and by every later use."""
        self._failure = error
        self.sock.close()
        raise error

    def close(self):
        if self._failure is None:
            self._failure = Disconnected("the client closed the connection")
        self.sock.close()

    @property
    def closed(self):
        return self._failure is not None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
