"""Services: what a node serves over RPC, and how a caller reaches one.

A service is an object with a `service_name`; only its methods decorated
with @exposed(role=...) can be called, and only by a caller holding one of
the roles the decorator names:

    class Ship:
        service_name = "ship"

        @exposed(role="player")
        def GetShipID(self, char_id): ...

Roles: "player" (a logged-in session), "admin" (also has every player
right), "node" (another node of the cluster, over a node link).

The caller's side is plain synchronous Python, blocking only its tasklet:

    ship = remote_service("ship")
    ship_id = ship.GetShipID(char_id)     # the value, or an RpcError raised

remote_service() asks the node's router (set_router) for the endpoint that
serves the service.
"""

import inspect

import rpc_errors

ROLES = ("player", "admin", "node")


def exposed(role):
    """Makes a service method callable over RPC by callers holding `role`
    (a role name or a tuple of them)."""
    roles = (role,) if isinstance(role, str) else tuple(role)
    for r in roles:
        if r not in ROLES:
            raise ValueError("unknown RPC role %r (one of %s)" % (r, ", ".join(ROLES)))

    def mark(func):
        func.rpc_roles = frozenset(roles)
        func.rpc_signature = inspect.signature(func)
        return func
    return mark


def caller_roles(role):
    """The set of roles a caller of `role` holds (an admin is a player too)."""
    return frozenset(("player", "admin")) if role == "admin" else frozenset((role,))


class Services:
    """One node's registry: service name -> object."""

    def __init__(self):
        self.by_name = {}

    def register(self, service):
        name = service.service_name
        if name in self.by_name:
            raise ValueError("RPC service %r registered twice" % name)
        self.by_name[name] = service
        return service

    def load(self, module_names, node):
        """Imports each game script module (scripts/) and lets it register
        its services: module.register(services, node)."""
        for name in module_names:
            __import__(name).register(self, node)

    def lookup(self, service, method, roles):
        """The bound method to run, or the RpcError that answers the call."""
        obj = self.by_name.get(service)
        if obj is None:
            raise rpc_errors.NoSuchService("no service %r on this node" % service)
        func = getattr(type(obj), method, None) if not method.startswith("_") else None
        allowed = getattr(func, "rpc_roles", None)
        if allowed is None:
            raise rpc_errors.NoSuchMethod("service %r has no exposed method %r" % (service, method))
        if not allowed & roles:
            raise rpc_errors.NotAllowed("%s.%s needs the role %s" % (service, method, " or ".join(sorted(allowed))))
        return getattr(obj, method), func.rpc_signature


_router = None


def set_router(router):
    """router(service, node) -> the endpoint to call (node: a node id or
    None for any that serves it); raises rpc_errors.Unavailable when none."""
    global _router
    _router = router


class _Method:
    __slots__ = ("service", "name", "node", "timeout")

    def __init__(self, service, name, node, timeout):
        self.service, self.name, self.node, self.timeout = service, name, node, timeout

    def __call__(self, *args, **kwargs):
        if _router is None:
            raise rpc_errors.Unavailable("this process routes no RPC (no node runs here)")
        return _router(self.service, self.node).call(self.service, self.name, args, kwargs, timeout=self.timeout)


class RemoteService:
    """remote_service(name).Method(*args, **kwargs) calls Method on the node
    the router picks (or `node`), blocking only the calling tasklet."""

    def __init__(self, name, node=None, timeout=None):
        self._name, self._node, self._timeout = name, node, timeout

    def __getattr__(self, method):
        if method.startswith("_"):
            raise AttributeError(method)
        return _Method(self._name, method, self._node, self._timeout)


remote_service = RemoteService
