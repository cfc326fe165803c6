"""RPC over one `_net` connection (docs/rpc.md): both directions at once.

Calling: call() sends an RpcCall with a call id unique among this
connection's outstanding calls, records it in the connection's table and
parks only the calling tasklet until the matching RpcReply/RpcError arrives,
the call's timeout passes (RpcTimeout; a late answer is dropped) or the
connection closes (Unavailable, to every waiting caller at once).

Serving: run() is the connection's reader. It matches answers to the table
and starts each incoming RpcCall in a new tasklet, so a slow method holds up
no other call. The caller's rights are the connection's `role` (a node link:
"node"); the remote traceback goes back only to an admin.

Hostile input: a payload that does not parse, or a message kind that has no
place on an RPC link, is logged and closes the connection; bad values inside
a well-formed call are answered with BAD_ARGUMENTS. At most `max_serving`
calls (MAX_SERVING unless the connection says fewer: a client's) run at once
per connection. When that many run, the reader waits for one to
finish (it stops reading: TCP holds the peer back) and yields to them
meanwhile, so a burst of calls queued on the connection is served, not
dropped; a call still without a slot after FULL_WAIT seconds (every slot
held by calls that wait themselves) is answered UNAVAILABLE. A link that
carries more than RPC (a sol's end of a proxy link: SessionChange) names a
handler per extra kind; a method that raises an RpcError itself (a relay of
another call) is answered with that error's kind.
"""

import itertools
import logging
import traceback

import _net
import google.protobuf.message
import uthread

import kinds_pb2
import rpc_errors
import rpc_pb2
import rpc_services
import rpc_values

log = logging.getLogger("shard.rpc")

DEFAULT_TIMEOUT = 10.0
MAX_SERVING = 1000
FULL_WAIT = 1.0  # seconds the reader waits for a free slot before refusing a call
MAX_TEXT = 16384  # an error's message and traceback are cut to this
_Kind = rpc_pb2.RpcError


class _Pending:
    """One outstanding call: the caller parks on `done`."""
    __slots__ = ("done", "result", "error")

    def __init__(self):
        self.done = uthread.Event()
        self.result = self.error = None


class Endpoint:
    """RPC on `connection`. `services` (rpc_services.Services) serves the
    peer's calls, with the rights of `role`; `on_notification(service,
    event, args)`, when given, receives the peer's notifications (in a new
    tasklet each). `what` names the peer in logs and errors. `handlers`:
    {kind: handler(payload)} for the other kinds this link carries, called
    in the reader in arrival order (so they must not block); a handler
    raises ProtocolViolation for a payload it refuses."""

    def __init__(self, connection, services, role, what, on_notification=None, handlers=None,
                 max_serving=MAX_SERVING):
        self.connection, self.services, self.what = connection, services, what
        self.handlers = handlers or {}
        self.roles = rpc_services.caller_roles(role)
        self.on_notification = on_notification
        self.pending = {}
        self.ids = itertools.count(1)
        self.slots = uthread.Semaphore(max_serving)  # calls this end may serve at once
        self.closed = None  # why, once closed

    # --- the caller's side ----------------------------------------------------

    def call(self, service, method, args=(), kwargs=None, timeout=None):
        """The remote method's result; raises an rpc_errors.RpcError."""
        timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        message = rpc_pb2.RpcCall(service=service, method=method, timeout_ms=max(1, int(timeout * 1000)))
        for arg in args:
            rpc_values.to_wire(arg, message.args.add())
        for key, arg in (kwargs or {}).items():
            rpc_values.to_wire(arg, message.kwargs[key])
        if self.closed is not None:
            raise rpc_errors.Unavailable("%s.%s: %s is closed: %s" % (service, method, self.what, self.closed))
        call_id = message.call_id = next(self.ids)
        pending = self.pending[call_id] = _Pending()
        try:
            self._send(message, kinds_pb2.RPC_CALL)
            if not pending.done.wait(timeout):
                raise rpc_errors.RpcTimeout("%s.%s: no answer from %s within %g s" % (service, method, self.what,
                                                                                       timeout))
        finally:
            self.pending.pop(call_id, None)
        if pending.error is not None:
            raise pending.error
        return pending.result

    def notify(self, service, event, *args):
        """Sends a one-way Notification; no answer comes."""
        message = rpc_pb2.Notification(service=service, event=event)
        for arg in args:
            rpc_values.to_wire(arg, message.args.add())
        self._send(message, kinds_pb2.NOTIFICATION)

    def _send(self, message, kind):
        try:
            self.connection.sendpacket(message.SerializeToString(), kind)
        except _net.TooLarge as e:
            raise ValueError("RPC message too large for %s: %s" % (self.what, e)) from None
        except _net.error as e:
            raise rpc_errors.Unavailable("%s: %s" % (self.what, e)) from None

    # --- the reader -------------------------------------------------------------

    def run(self):
        """Reads the connection until it closes; returns why. Every caller
        still waiting then gets Unavailable."""
        try:
            while True:
                kind, payload = self.connection.recvmessage()
                self._dispatch(kind, payload)
        except _net.error as e:
            self.closed = str(e)
        except ProtocolViolation as e:
            log.warning("%s: %s; closing the connection", self.what, e)
            self.closed = str(e)
        finally:
            if self.closed is None:
                self.closed = "reader stopped"
            self.connection.close()
            self._fail_all()
        return self.closed

    def close(self):
        self.connection.close()

    def _fail_all(self):
        for pending in list(self.pending.values()):
            pending.error = rpc_errors.Unavailable("%s closed before the answer came: %s" % (self.what, self.closed))
            pending.done.set()

    def _dispatch(self, kind, payload):
        if kind == kinds_pb2.RPC_CALL:
            call = _parse(rpc_pb2.RpcCall, payload)
            if self.slots.acquire(timeout=FULL_WAIT):
                uthread.new(self._serve, call)
            else:
                self._answer_error(call.call_id, _Kind.UNAVAILABLE, "", "too many calls in flight on this link")
        elif kind == kinds_pb2.RPC_REPLY:
            reply = _parse(rpc_pb2.RpcReply, payload)
            pending = self.pending.get(reply.call_id)
            if pending is not None:
                try:
                    pending.result = rpc_values.from_wire(reply.result)
                except rpc_values.WireValueError as e:
                    pending.error = rpc_errors.BadArguments("bad result from %s: %s" % (self.what, e))
                pending.done.set()
        elif kind == kinds_pb2.RPC_ERROR:
            error = _parse(rpc_pb2.RpcError, payload)
            pending = self.pending.get(error.call_id)
            if pending is not None:
                tb = None
                if error.HasField("details") and error.details.WhichOneof("kind") == "string_value":
                    tb = error.details.string_value
                pending.error = rpc_errors.from_kind(error.kind, error.message, error.type, tb)
                pending.done.set()
        elif kind == kinds_pb2.NOTIFICATION:
            note = _parse(rpc_pb2.Notification, payload)
            try:
                args = [rpc_values.from_wire(v) for v in note.args]
            except rpc_values.WireValueError as e:
                raise ProtocolViolation("bad notification %s.%s: %s" % (note.service, note.event, e)) from None
            if self.on_notification is not None:
                uthread.new(self.on_notification, note.service, note.event, args)
            else:
                log.debug("%s: notification %s.%s with no handler", self.what, note.service, note.event)
        elif kind in self.handlers:
            self.handlers[kind](payload)
        else:
            raise ProtocolViolation("message kind %d has no place on an RPC link" % kind)

    # --- the callee's side --------------------------------------------------------

    def _serve(self, call):
        try:
            try:
                method, signature = self.services.lookup(call.service, call.method, self.roles)
                try:
                    args = [rpc_values.from_wire(v) for v in call.args]
                    kwargs = {k: rpc_values.from_wire(v) for k, v in call.kwargs.items()}
                    signature.bind(None, *args, **kwargs)  # None: self
                except (rpc_values.WireValueError, TypeError) as e:
                    raise rpc_errors.BadArguments("%s.%s: %s" % (call.service, call.method, e)) from None
            except rpc_errors.RpcError as e:
                self._answer_error(call.call_id, e.kind, "", e.message)
                return
            try:
                result = method(*args, **kwargs)
                reply = rpc_pb2.RpcReply(call_id=call.call_id)
                rpc_values.to_wire(result, reply.result)
            except rpc_errors.RpcError as e:  # a relayed call's error keeps its kind
                self._answer_error(call.call_id, e.kind, e.type, e.message)
                return
            except Exception as e:  # the method's own error goes back to the caller
                tb = traceback.format_exc() if "admin" in self.roles else None
                self._answer_error(call.call_id, _Kind.APPLICATION, type(e).__name__, str(e), tb)
                return
            if call.call_id:
                self._answer(reply, kinds_pb2.RPC_REPLY, call)
        finally:
            self.slots.release()

    def _answer_error(self, call_id, kind, type_name, message, tb=None):
        if not call_id:
            return  # a call that wants no answer
        error = rpc_pb2.RpcError(call_id=call_id, kind=kind, type=type_name[:MAX_TEXT], message=message[:MAX_TEXT])
        if tb is not None:
            error.details.string_value = tb[-MAX_TEXT:]
        self._answer(error, kinds_pb2.RPC_ERROR, None)

    def _answer(self, message, kind, call):
        try:
            self._send(message, kind)
        except ValueError as e:  # the result does not fit in a packet
            self._answer_error(call.call_id, _Kind.APPLICATION, "ValueError", str(e))
        except rpc_errors.Unavailable as e:
            log.info("%s: cannot answer call %d: %s", self.what, message.call_id, e)


class ProtocolViolation(Exception):
    """The peer sent what an RPC link does not carry: the link closes."""


def _parse(cls, payload):
    message = cls()
    try:
        message.ParseFromString(payload)
    except google.protobuf.message.DecodeError as e:
        raise ProtocolViolation("payload does not parse as %s: %s" % (cls.__name__, e)) from None
    return message
