"""Accounts: creation and password checks (the `accounts` table, 0001).

A password is never stored, nor logged: only a salted slow hash, in one
string that carries its own parameters, so the cost can rise later without
invalidating the hashes already stored:

    scrypt$n=16384,r=8,p=1$<salt, base64>$<hash, base64>

scrypt (RFC 7914, OpenSSL's, through hashlib) with n=2**14, r=8, p=1 takes
16 MiB and some tens of milliseconds per hash: cheap for one login, ruinous
for a guesser with a stolen table. The salt is 16 random bytes, the hash 32.
hash_password() and verify_password() are plain blocking functions;
create(), set_password() and check() run them on a worker thread through
`gate` (hash_gate.py: a few at once, the rest queued, hash_gate.Busy past
the queue's bound; hashlib releases the interpreter lock while OpenSSL
works), so a login never stalls the game loop and a login storm never takes
every core.
"""

import base64
import hashlib
import hmac
import os

import db

import hash_gate

Busy = hash_gate.Busy  # what create(), set_password() and check() raise when too many hashes wait

SCHEME = "scrypt"
N, R, P = 1 << 14, 8, 1   # the cost of new hashes; raise N as machines get faster
SALT_BYTES, HASH_BYTES = 16, 32
MAX_N = 1 << 20           # a stored hash never makes a check cost more than this
MAX_PASSWORD_BYTES = 1024
MAX_NAME_CHARS = 64       # the column's size

# Every hash of this process goes through it; a proxy sizes it from its
# prefs (proxy.password_checks, proxy.login_queue).
gate = hash_gate.HashGate()


class AccountError(ValueError):
    """A name or password that cannot make an account; the message says why."""


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _scrypt(password, salt, n, r, p):
    # maxmem: scrypt needs 128*n*r bytes (and a little more); OpenSSL's default cap is 32 MiB.
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=HASH_BYTES,
                          maxmem=256 * n * r + (1 << 20))


def hash_password(password, n=N, r=R, p=P):
    """The string to store for `password` (blocking: run it off the loop)."""
    _check_password(password)
    salt = os.urandom(SALT_BYTES)
    return "%s$n=%d,r=%d,p=%d$%s$%s" % (SCHEME, n, r, p, _b64(salt), _b64(_scrypt(password, salt, n, r, p)))


def parse(stored):
    """(n, r, p, salt, hash) of a stored string; ValueError when it is not one of ours."""
    try:
        scheme, params, salt, digest = stored.split("$")
        values = dict(item.split("=", 1) for item in params.split(","))
        n, r, p = int(values["n"]), int(values["r"]), int(values["p"])
        salt, digest = base64.b64decode(salt, validate=True), base64.b64decode(digest, validate=True)
    except (ValueError, KeyError) as e:
        raise ValueError("not a stored password hash: %s" % e) from None
    if scheme != SCHEME or sorted(values) != ["n", "p", "r"]:
        raise ValueError("not a stored password hash: scheme %r, parameters %s" % (scheme, sorted(values)))
    if not (2 <= n <= MAX_N and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16 and salt and digest):
        raise ValueError("stored password hash parameters out of range: n=%d, r=%d, p=%d" % (n, r, p))
    return n, r, p, salt, digest


def verify_password(password, stored):
    """Whether `password` matches `stored` (blocking; the comparison takes the same time wherever they differ)."""
    n, r, p, salt, digest = parse(stored)
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        return False
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), digest)


def needs_rehash(stored):
    """Whether `stored` was made with weaker parameters than today's."""
    n, r, p, _, _ = parse(stored)
    return (n, r, p) != (N, R, P)


def _check_password(password):
    if not isinstance(password, str) or not password:
        raise AccountError("the password is empty")
    if len(password.encode("utf-8")) > MAX_PASSWORD_BYTES:
        raise AccountError("the password is longer than %d bytes" % MAX_PASSWORD_BYTES)


def check_name(name):
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME_CHARS or not name.isprintable() \
            or name != name.strip():
        raise AccountError("an account name is 1..%d printable characters, no space at either end" % MAX_NAME_CHARS)


# A hash to check against when the account does not exist, so an unknown
# name costs the same time as a wrong password (no probing for names).
_DUMMY = "%s$n=%d,r=%d,p=%d$%s$%s" % (SCHEME, N, R, P, _b64(b"\0" * SALT_BYTES), _b64(b"\0" * HASH_BYTES))


def create(name, password):
    """A new account; returns its id. AccountError for a bad or taken name
    (db.Error for the database's own failures)."""
    check_name(name)
    stored = gate.run(hash_password, password)
    if db.query("SELECT 1 FROM accounts WHERE name = ?", name):
        raise AccountError("the account name %r is taken" % name)
    return db.execute("INSERT INTO accounts (name, password_hash) VALUES (?, ?)", name, stored).lastrowid


def set_password(name, password):
    """Replaces an account's password; AccountError when there is no such account."""
    stored = gate.run(hash_password, password)
    if db.execute("UPDATE accounts SET password_hash = ? WHERE name = ?", stored, name).rowcount != 1:
        raise AccountError("no account named %r" % name)


def check(name, password):
    """(account id, None) when `password` is the account's, else (None, the
    reason for the logs: 'unknown account', 'wrong password', 'banned').
    Only this tasklet waits: the database, then the hash on a worker thread.
    Busy when too many checks wait already (nothing was checked)."""
    gate.admit()  # in a storm, refused before the database is asked
    rows = db.query("SELECT id, password_hash, banned FROM accounts WHERE name = ?", name) \
        if isinstance(name, str) and 1 <= len(name) <= MAX_NAME_CHARS else []
    account_id, stored, banned = rows[0] if rows else (None, _DUMMY, False)
    try:
        ok = gate.run(verify_password, password, stored)
    except ValueError as e:  # a row no hash_password() wrote
        return None, "unusable password hash (%s)" % e
    if account_id is None:
        return None, "unknown account"
    if not ok:
        return None, "wrong password"
    if banned:
        return None, "banned"
    return account_id, None
