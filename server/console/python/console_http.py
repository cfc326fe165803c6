"""The console's HTTP vocabulary: a parsed request, answers, and the route
table (each route says who may call it: anyone, a viewer, an operator, an
admin). The transport is _console's server on an IO thread; this is only
what the console's tasklet makes of what it queued.

Every byte came from the network: targets, headers and bodies are parsed
with bounds and refused with a clear 4xx, never trusted."""

import http.cookies
import json
import urllib.parse


# Roles, weakest first: a route needs at least its role.
ROLES = ("viewer", "operator", "admin")
PUBLIC = None


class HttpError(Exception):
    """Answered as {"error": message} with `status`."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class Request:

    def __init__(self, raw):
        self.id, self.method, target, headers, self.body, self.peer, self.websocket = raw
        split = urllib.parse.urlsplit(target)
        self.path = split.path
        self.query = urllib.parse.parse_qs(split.query, max_num_fields=20)
        self.headers = {}
        for name, value in headers:
            self.headers[name.lower()] = value
        self.cookies = {}
        cookie = self.headers.get("cookie")
        if cookie:
            jar = http.cookies.SimpleCookie()
            try:
                jar.load(cookie)
            except http.cookies.CookieError:
                pass  # a malformed cookie is no session
            self.cookies = {key: morsel.value for key, morsel in jar.items()}
        self.session = None  # set by the auth check

    def json(self):
        """The body as a JSON object; HttpError 400 saying why otherwise."""
        if not self.body:
            return {}
        try:
            value = json.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise HttpError(400, "the body is not JSON: %s" % e) from None
        if not isinstance(value, dict):
            raise HttpError(400, "the body must be a JSON object")
        return value

    def arg(self, name, default=None):
        values = self.query.get(name)
        return values[0] if values else default


def json_answer(value, status=200, headers=()):
    body = json.dumps(value, separators=(",", ":"), default=str).encode("utf-8")
    return status, [("Content-Type", "application/json"), ("Cache-Control", "no-store")] + list(headers), body


def error_answer(status, message, headers=()):
    return json_answer({"error": message}, status, headers)


class Route:

    def __init__(self, method, path, role, handler, page=False, websocket=False, change=False):
        self.method, self.path, self.role, self.handler = method, path, role, handler
        self.page = page              # a browser page: unauthenticated goes to /login
        self.websocket = websocket
        self.change = change          # needs the CSRF token, and is audited


class Router:

    def __init__(self):
        self.routes = {}

    def add(self, method, path, role, handler, **kinds):
        if role is not PUBLIC and role not in ROLES:
            raise ValueError("route %s %s: role %r is not one of %s" % (method, path, role, ROLES))
        self.routes[(method, path)] = Route(method, path, role, handler, **kinds)

    def find(self, method, path):
        """The route, or HttpError 404/405."""
        route = self.routes.get((method, path))
        if route is not None:
            return route
        if any(p == path for _, p in self.routes):
            raise HttpError(405, "%s is not allowed on %s" % (method, path))
        raise HttpError(404, "no route %s" % path)

    def __iter__(self):
        return iter(self.routes.values())
