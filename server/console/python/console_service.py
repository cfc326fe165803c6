"""The admin console of a node: serves the page, the JSON API and the live
push over _console's HTTP server (on an IO thread), from tasklets of this
node. docs/console.md.

    console = console_service.Console(commands, auth, audit)
    console.start("127.0.0.1", 8080)      # serving tasklet + 1 Hz push
    console.stop()

One tasklet takes the parsed requests; each runs in a tasklet of its own (a
10 s profile does not hold up the others). Every route but the login page
and the login itself needs a session (console_auth.py); every change needs
the CSRF token and is audited (console_audit.py)."""

import json
import logging
import os

import _console
import gameloop
import stackless
import uthread

import console_auth
import console_cluster
import console_metrics
from console_commands import CommandError
from console_http import PUBLIC, HttpError, Request, Router, error_answer, json_answer

log = logging.getLogger("shard.console")

WEB_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "web")
CHART_JS = "vendor/chart.min.js"  # Chart.js 3.9.1 from Debian 12 libjs-chart.js, MIT (vendor/chart.js.copyright)
# The login page's own files are public (they hold no data); the rest needs a session.
PUBLIC_STATIC = {
    "/static/login.js": ("login.js", "text/javascript; charset=utf-8"),
    "/static/console.css": ("console.css", "text/css; charset=utf-8"),
}
STATIC = {
    "/static/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/static/chart.js": (CHART_JS, "text/javascript; charset=utf-8"),
}
# The page's own policy: its scripts and styles only, the push on this host.
SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
                                "frame-ancestors 'none'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
]


class Console:

    def __init__(self, commands, auth, audit, push_interval_s=1.0, cluster=False):
        self.commands, self.auth, self.audit = commands, auth, audit
        self.cluster = cluster  # a node of the directory: changes for every node of a role
        self.push_interval_s = push_interval_s
        self.server = None
        self.metrics_server = None
        self.tls_cert = ""
        self.histogram = None
        self.tasklets = []
        self.router = Router()
        self._routes()

    # ---- the route table: every endpoint, and who may call it ----

    def _routes(self):
        add = self.router.add
        add("GET", "/login", PUBLIC, self.page_login, page=True)
        add("POST", "/api/login", PUBLIC, self.api_login)
        for path in PUBLIC_STATIC:
            add("GET", path, PUBLIC, self.static_file)
        add("GET", "/", "viewer", self.page_index, page=True)
        for path in STATIC:
            add("GET", path, "viewer", self.static_file, page=True)
        add("POST", "/api/logout", "viewer", self.api_logout, change=True)
        add("GET", "/api/session", "viewer", lambda r: {"name": r.session.name, "role": r.session.role,
                                                         "csrf": r.session.csrf})
        add("GET", "/api/stats", "viewer", lambda r: self.commands.stats())
        add("GET", "/api/settings", "viewer", lambda r: self.commands.settings())
        add("GET", "/api/tasklets", "viewer", lambda r: self.commands.tasklets())
        add("GET", "/api/logs", "viewer", lambda r: self.commands.recent_logs(r.arg("count", 100)))
        add("GET", "/api/audit", "viewer", lambda r: list(self.audit.recent))
        add("GET", "/api/cluster", "viewer", self.api_cluster)
        add("GET", "/ws", "viewer", self.websocket, websocket=True)
        add("POST", "/api/setting", "operator", self.api_set_setting, change=True)
        add("POST", "/api/kill", "operator", self.api_kill, change=True)
        add("POST", "/api/profile", "operator", self.api_profile, change=True)
        add("POST", "/api/exec", "admin", self.api_exec, change=True)

    # ---- serving ----

    def start(self, host, port, metrics_host=None, metrics_port=None, tls_cert="", tls_key=""):
        self.server = _console.serve(host, port, tls_cert=tls_cert or None, tls_key=tls_key or None)
        self.auth.secure = bool(tls_cert)  # the cookie is then sent over TLS only
        self.tls_cert = tls_cert
        logging.getLogger().addHandler(self.commands.logs)
        self._spawn(self.serve_forever, "console: requests")
        self._spawn(self.push_forever, "console: push")
        log.info("admin console on %s://%s:%d/", "https" if tls_cert else "http", host, self.server.port)
        if metrics_port is not None:
            self.metrics_server = _console.serve(metrics_host or host, metrics_port)
            self.histogram = console_metrics.FrameHistogram()
            gameloop.add_tick(self.histogram.tick)
            self._spawn(self.serve_metrics, "console: metrics")
            log.info("Prometheus metrics on http://%s:%d/metrics", metrics_host or host, self.metrics_server.port)
        return self.server.port

    def _spawn(self, func, name, *args):
        t = stackless.tasklet(func)(*args)
        t.name = name
        self.commands.own.add(t)
        gameloop.register_service(t)
        self.tasklets.append(t)
        return t

    def stop(self):
        for t in self.tasklets:
            if t.alive:
                t.kill()
        self.tasklets = []
        logging.getLogger().removeHandler(self.commands.logs)
        if self.histogram is not None:
            gameloop.remove_tick(self.histogram.tick)
            self.histogram = None
        for server in (self.server, self.metrics_server):
            if server is not None:
                server.close()

    def serve_forever(self):
        while True:
            raw = self.server.next_request()
            t = stackless.tasklet(self.handle)(raw)
            t.name = "console: %s %s" % (raw[1], raw[2][:80])
            self.commands.own.add(t)

    def handle(self, raw):
        request_id, method, target = raw[:3]
        try:
            try:
                request = Request(raw)  # parsing hostile text: in the request's own tasklet
            except ValueError as e:  # a target the parsers refuse (too many fields, ...)
                status, headers, body = error_answer(400, "bad request: %s" % e)
            else:
                status, headers, body = self.answer(request)
        except Exception as e:  # a bug in a handler answers 500; the node goes on
            log.exception("console: %s %s failed", method, target[:200])
            status, headers, body = error_answer(500, "internal error: %s" % type(e).__name__)
        finally:
            self.commands.own.discard(stackless.getcurrent())
        if status is not None:
            self.server.respond(request_id, status, headers + SECURITY_HEADERS, body)

    def answer(self, request):
        """(status, headers, body), or (None, ...) when the request became a WebSocket."""
        try:
            route = self.router.find(request.method, request.path)
            if route.role is not PUBLIC:
                try:
                    self.auth.check(request, route)
                except HttpError as e:
                    if route.page and e.status == 401:
                        return 303, [("Location", "/login")], b""
                    raise
            result = route.handler(request)
        except HttpError as e:
            return error_answer(e.status, str(e))
        except CommandError as e:
            return error_answer(400, str(e))
        if isinstance(result, tuple):
            return result
        return json_answer(result)

    # ---- pages and files ----

    def _file(self, path, content_type):
        with open(path if os.path.isabs(path) else os.path.join(WEB_DIR, path), "rb") as f:
            return 200, [("Content-Type", content_type), ("Cache-Control", "no-cache")], f.read()

    def page_login(self, request):
        return self._file("login.html", "text/html; charset=utf-8")

    def page_index(self, request):
        return self._file("index.html", "text/html; charset=utf-8")

    def static_file(self, request):
        return self._file(*(STATIC.get(request.path) or PUBLIC_STATIC[request.path]))

    # ---- the API ----

    def api_login(self, request):
        body = request.json()
        session = self.auth.login(body.get("name"), body.get("password"), request.peer)
        return json_answer({"name": session.name, "role": session.role, "csrf": session.csrf},
                           headers=[("Set-Cookie", self.auth.cookie(session))])

    def api_logout(self, request):
        self.auth.logout(request.session)
        return json_answer({"logged_out": request.session.name}, headers=[("Set-Cookie", self.auth.cleared_cookie())])

    def _audited(self, request, action, detail, run):
        """run() with an audit entry: who, from where, what, and how it went."""
        who = request.session.name
        try:
            result = run()
        except CommandError as e:
            self.audit.record(who, request.peer, action, detail, "refused: %s" % e)
            raise
        except Exception as e:
            self.audit.record(who, request.peer, action, detail, "failed: %s" % e)
            raise
        failed = isinstance(result, dict) and result.get("ok") is False  # console input that raised
        self.audit.record(who, request.peer, action, detail, "raised" if failed else "ok")
        return result

    def api_set_setting(self, request):
        body = request.json()
        name, value, role = body.get("name"), body.get("value"), body.get("role")
        if role is None:
            return self._audited(request, "set " + str(name)[:24], "%s = %r" % (name, value),
                                 lambda: self.commands.set_setting(name, value))
        if not self.cluster:
            raise HttpError(400, "this node is in no cluster: set it alone (no role)")

        def run():
            self.commands.check_setting(name, value)  # refused here before any node is asked
            return {"role": role, "nodes": self.post_to_role(request, role, name, value)}
        return self._audited(request, "set %s (%s)" % (str(name)[:20], str(role)[:8]),
                             "%s = %r on every %s" % (name, value, role), run)

    def api_cluster(self, request):
        """Every live node's statistics, asked with this session (the cluster view)."""
        if not self.cluster:
            raise HttpError(400, "this node is in no cluster")
        return console_cluster.cluster_stats("%s=%s" % (console_auth.COOKIE, request.cookies[console_auth.COOKIE]),
                                             self.tls_cert)

    def post_to_role(self, request, role, name, value):
        try:
            return console_cluster.post_to_role(role, "/api/setting", {"name": name, "value": value},
                                                "%s=%s" % (console_auth.COOKIE, request.cookies[console_auth.COOKIE]),
                                                request.session.csrf, self.tls_cert)
        except ValueError as e:
            raise CommandError(str(e)) from None

    def api_kill(self, request):
        body = request.json()
        return self._audited(request, "kill", "tasklet %r" % (body.get("id"),),
                             lambda: self.commands.kill(body.get("id")))

    def api_profile(self, request):
        body = request.json()
        seconds = body.get("seconds", 5)
        return self._audited(request, "profile", "%r s" % (seconds,),
                             lambda: self.commands.profile(seconds, body.get("limit", 50)))

    def api_exec(self, request):
        code = request.json().get("code")
        return self._audited(request, "exec", str(code), lambda: self.commands.execute(code))

    # ---- the live push ----

    def websocket(self, request):
        if not request.websocket:
            raise HttpError(400, "/ws is a WebSocket: send an upgrade request")
        self.server.upgrade(request.id)
        return None, None, None

    def push_forever(self):
        while True:
            uthread.Sleep(self.push_interval_s)
            if self.server.stats()["websockets"]:
                self.server.broadcast(json.dumps(self.push_payload(), separators=(",", ":"), default=str))

    def push_payload(self):
        s = self.commands.stats()
        return {"type": "stats", "stats": s}

    # ---- Prometheus ----

    def serve_metrics(self):
        while True:
            raw = self.metrics_server.next_request()
            request_id, method, target = raw[:3]
            if method == "GET" and target.split("?", 1)[0] == "/metrics":
                body = console_metrics.render(self.commands, self.server.stats(), self.histogram).encode("utf-8")
                answer = (200, [("Content-Type", console_metrics.CONTENT_TYPE)], body)
            else:
                answer = error_answer(404, "only GET /metrics here")
            self.metrics_server.respond(request_id, *answer)
