"""Who may use the console: admin accounts, sessions, CSRF, throttling.

Accounts: the database's `accounts` with a `console_role` (0009_admin_roles.sql:
viewer, operator or admin; NULL: no console access), checked by accounts.check()
(the slow scrypt hash on a worker thread). A node without a database (`shard run`
without --db) reads a password file instead: `name:role:<accounts.hash_password()>`
lines, the same slow hash.

A session is a random token in a cookie (HttpOnly: no script reads it;
SameSite=Strict: no other site's page sends it) that ends after `idle_s`
without use. Each session has its CSRF token, which the page reads from the
login answer and sends as X-CSRF-Token with every change: a forged request
from another origin carries neither. Logins are throttled per address and per
account name (login_throttle.py, as the proxies' logins are)."""

import hashlib
import hmac
import logging
import secrets
import time

import accounts
import db
import login_throttle

from console_http import ROLES, HttpError

log = logging.getLogger("shard.console")

COOKIE = "shard_console"
CSRF_HEADER = "x-csrf-token"
MAX_SESSIONS = 1000
# A session shared through the database is checked there again after this
# long: a logout or an expiry on another node reaches this one within it.
RECHECK_S = 5.0


class Session:

    def __init__(self, name, role, now, token=None, csrf=None):
        self.token = token or secrets.token_urlsafe(32)
        self.csrf = csrf or secrets.token_urlsafe(32)
        self.name, self.role = name, role
        self.seen = self.checked = now

    def may(self, role):
        return ROLES.index(self.role) >= ROLES.index(role)


class DatabaseAccounts:
    """Console accounts from the `accounts` table (its console_role column)."""

    def check(self, name, password):
        account_id, why = accounts.check(name, password)
        if account_id is None:
            return None, why
        rows = db.query("SELECT console_role FROM accounts WHERE id = ?", account_id)
        role = rows[0][0] if rows else None
        if role not in ROLES:
            return None, "no console role"
        return role, None


class FileAccounts:
    """Console accounts from a password file (a node without a database)."""

    def __init__(self, path):
        self.path = path
        self.entries = {}
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                try:
                    name, role, stored = line.split(":", 2)
                    accounts.parse(stored)
                except ValueError as e:
                    raise ValueError("%s:%d: not name:role:hash (%s)" % (path, number, e)) from None
                if role not in ROLES:
                    raise ValueError("%s:%d: role %r is not one of %s" % (path, number, role, ", ".join(ROLES)))
                self.entries[name] = (role, stored)

    def check(self, name, password):
        role, stored = self.entries.get(name, (None, accounts._DUMMY))
        ok = accounts.gate.run(accounts.verify_password, password, stored)
        if role is None:
            return None, "unknown account"
        return (role, None) if ok else (None, "wrong password")


def _token_hash(token):
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class SharedSessions:
    """Sessions in the database's console_sessions: every node's console
    knows a session made on any of them (0009_admin_roles.sql)."""

    def __init__(self, idle_s):
        self.idle_s = idle_s

    def add(self, session):
        db.execute("DELETE FROM console_sessions WHERE last_seen < NOW(6) - INTERVAL ? SECOND", int(self.idle_s))
        db.execute("INSERT INTO console_sessions (token_hash, account, role, csrf) VALUES (?, ?, ?, ?)",
                   _token_hash(session.token), session.name, session.role, session.csrf)

    def find(self, token, now):
        """The live session of `token`, its last use moved to now; None if there is none."""
        rows = db.query("SELECT account, role, csrf FROM console_sessions WHERE token_hash = ?"
                        " AND last_seen >= NOW(6) - INTERVAL ? SECOND", _token_hash(token), int(self.idle_s))
        if not rows:
            return None
        db.execute("UPDATE console_sessions SET last_seen = NOW(6) WHERE token_hash = ?", _token_hash(token))
        name, role, csrf = rows[0]
        return Session(name, role, now, token=token, csrf=csrf)

    def remove(self, session):
        db.execute("DELETE FROM console_sessions WHERE token_hash = ?", _token_hash(session.token))


class Auth:

    def __init__(self, accounts_source, idle_s=1800.0, window_s=60.0, per_address=20, failures_per_account=5,
                 clock=time.monotonic, shared=None):
        self.accounts = accounts_source
        self.shared = shared  # SharedSessions on a node with a database
        self.secure = False   # served over TLS: the cookie says Secure
        self.idle_s, self.clock = idle_s, clock
        self.sessions = {}
        self.by_address = login_throttle.Throttle(per_address, window_s, clock=clock)
        self.failures = login_throttle.Throttle(failures_per_account, window_s, clock=clock)

    def login(self, name, password, peer):
        """A new Session, or HttpError 401 (wrong) / 429 (throttled)."""
        if not isinstance(name, str) or not isinstance(password, str):
            raise HttpError(400, "name and password must be strings")
        address = peer.rsplit(":", 1)[0]
        for throttle, key in ((self.by_address, address), (self.failures, name)):
            if throttle.blocked(key):
                raise HttpError(429, "too many login attempts: retry in %d s" % (throttle.retry_after(key) + 1))
        try:
            role, why = self.accounts.check(name, password)
        except accounts.Busy as e:  # a storm of (player) logins on this node: not this account's failure
            raise HttpError(503, "busy with other logins: retry in %d s" % e.retry_after) from None
        if role is None:
            # Failures count, per address and per account: an operator's
            # good logins never lock out the others on their machine.
            self.by_address.record(address)
            self.failures.record(name)
            log.warning("console login refused for %r from %s: %s", name, peer, why)
            raise HttpError(401, "wrong name or password")
        self.failures.forget(name)
        now = self.clock()
        self._expire(now)
        if len(self.sessions) >= MAX_SESSIONS:
            oldest = min(self.sessions.values(), key=lambda s: s.seen)
            del self.sessions[oldest.token]
        session = Session(name, role, now)
        if self.shared is not None:
            self.shared.add(session)
        self.sessions[session.token] = session
        log.info("console login: %s (%s) from %s", name, role, peer)
        return session

    def logout(self, session):
        self.sessions.pop(session.token, None)
        if self.shared is not None:
            self.shared.remove(session)

    def _expire(self, now):
        for token in [t for t, s in self.sessions.items() if now - s.seen > self.idle_s]:
            del self.sessions[token]

    def session_of(self, request):
        """The request's live session, or None (none, unknown, expired)."""
        token = request.cookies.get(COOKIE)
        if not token or len(token) > 100:
            return None
        now = self.clock()
        session = self.sessions.get(token)
        if session is not None and now - session.seen > self.idle_s:
            del self.sessions[token]
            session = None
        if self.shared is not None and (session is None or now - session.checked > RECHECK_S):
            session = self.shared.find(token, now)
            if session is None:
                self.sessions.pop(token, None)
                return None
            self.sessions[token] = session
        if session is None:
            return None
        session.seen = now
        return session

    def check(self, request, route):
        """Raises HttpError unless the request may call the route."""
        session = self.session_of(request)
        if session is None:
            raise HttpError(401, "log in first (no session, or it expired)")
        if not session.may(route.role):
            raise HttpError(403, "%s needs the %s role; %s is %s" % (route.path, route.role, session.name, session.role))
        if route.change:
            sent = request.headers.get(CSRF_HEADER, "")
            if not hmac.compare_digest(sent.encode("utf-8", "replace"), session.csrf.encode("ascii")):
                raise HttpError(403, "missing or wrong CSRF token (X-CSRF-Token)")
        request.session = session

    def cookie(self, session):
        return "%s=%s; Path=/; HttpOnly; SameSite=Strict; Max-Age=%d%s" % (COOKIE, session.token, int(self.idle_s),
                                                                         "; Secure" if self.secure else "")

    @staticmethod
    def cleared_cookie():
        return "%s=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0" % COOKIE
