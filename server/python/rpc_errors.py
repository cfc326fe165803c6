"""What a remote call raises on the caller's side: one class per
shard.wire.RpcError kind (netproto/proto/rpc.proto), all RpcError."""

import rpc_pb2

Kind = rpc_pb2.RpcError


class RpcError(Exception):
    """A remote call failed. `kind` is the RpcError.Kind; for APPLICATION,
    `type` is the remote exception's type name; `remote_traceback` is set only
    for callers with the admin role."""
    kind = Kind.KIND_UNKNOWN

    def __init__(self, message, type="", remote_traceback=None):
        super().__init__(message)
        self.message, self.type, self.remote_traceback = message, type, remote_traceback

    def __str__(self):
        text = "%s: %s" % (self.type, self.message) if self.type else self.message
        if self.remote_traceback:
            text += "\n--- remote traceback ---\n" + self.remote_traceback
        return text


class NoSuchService(RpcError):
    kind = Kind.NO_SUCH_SERVICE


class NoSuchMethod(RpcError):
    kind = Kind.NO_SUCH_METHOD


class NotAllowed(RpcError):
    kind = Kind.NOT_ALLOWED


class BadArguments(RpcError):
    kind = Kind.BAD_ARGUMENTS


class ApplicationError(RpcError):
    """The remote method raised: `type` and the message are its exception's."""
    kind = Kind.APPLICATION


class RpcTimeout(RpcError, TimeoutError):
    """No answer within the call's timeout (the call may still run remotely)."""
    kind = Kind.TIMEOUT


class Unavailable(RpcError, ConnectionError):
    """No node serves the call now: no link, or the link closed (the node is
    gone) before the answer came."""
    kind = Kind.UNAVAILABLE


BY_KIND = {cls.kind: cls for cls in (NoSuchService, NoSuchMethod, NotAllowed, BadArguments, ApplicationError,
                                     RpcTimeout, Unavailable)}


def from_kind(kind, message, type="", remote_traceback=None):
    return BY_KIND.get(kind, RpcError)(message, type, remote_traceback)
