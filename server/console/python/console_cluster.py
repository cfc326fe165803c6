"""The console across the cluster: each node's console registers where it
listens in its cluster_nodes row (0009_admin_roles.sql). A change "for
every node of a role" is sent by the console that got it to each live node
of that role, with the operator's own session (sessions are shared through
the database, console_auth.SharedSessions): each node validates, applies and
audits it as if the operator had asked it directly. The cluster view asks
every live node's console for its statistics the same way."""

import http.client
import json
import logging
import ssl

import db
import uthread

log = logging.getLogger("shard.console")

CALL_TIMEOUT_S = 10.0
ROLES = ("sol", "proxy")


def register(node_id, address, port):
    """Where this node's console listens, for the others (in its directory row)."""
    db.execute("UPDATE cluster_nodes SET console_address = ?, console_port = ? WHERE id = ?", address, port, node_id)


def consoles_of(role):
    """[(name, address, port)] of the live nodes of `role` that serve a console."""
    return [tuple(row) for row in db.query(
        "SELECT name, console_address, console_port FROM cluster_nodes"
        " WHERE role = ? AND gone_at IS NULL AND console_port IS NOT NULL ORDER BY name", role)]


def _request(method, address, port, path, body, cookie, csrf, tls_ca):
    if tls_ca:
        # Consoles with TLS: the other nodes' certificates are checked against this node's own chain.
        context = ssl.create_default_context(cafile=tls_ca)
        connection = http.client.HTTPSConnection(address, port, timeout=CALL_TIMEOUT_S, context=context)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=CALL_TIMEOUT_S)
    try:
        headers = {"Cookie": cookie}
        if method == "POST":
            headers.update({"Content-Type": "application/json", "X-CSRF-Token": csrf})
        connection.request(method, path, None if body is None else json.dumps(body), headers)
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    answer = json.loads(data) if data else {}
    if response.status != 200:
        return {"error": "HTTP %d: %s" % (response.status, answer.get("error", response.reason))}
    return answer


def _ask_all(targets, method, path, body, cookie, csrf, tls_ca):
    """{node name: its answer or {error}} from every (name, address, port) at once."""
    def one(address, port):
        try:
            return _request(method, address, port, path, body, cookie, csrf, tls_ca)
        except (OSError, ValueError) as e:  # a node gone meanwhile, or not answering
            return {"error": "%s:%d: %s" % (address, port, e)}
    answers = uthread.parallel([lambda a=address, p=port: one(a, p) for _, address, port in targets],
                               timeout=CALL_TIMEOUT_S + 5)
    return {name: answer for (name, _, _), answer in zip(targets, answers)}


def post_to_role(role, path, body, cookie, csrf, tls_ca=""):
    """POSTs `body` to `path` on every live node of `role` at once; {node name: its answer or error}."""
    if role not in ROLES:
        raise ValueError("role must be one of %s, not %r" % (", ".join(ROLES), role))
    return _ask_all(consoles_of(role), "POST", path, body, cookie, csrf, tls_ca)


def cluster_stats(cookie, tls_ca=""):
    """{role: {node name: its /api/stats or {error}}} of every live node that serves a console."""
    return {role: _ask_all(consoles_of(role), "GET", "/api/stats", None, cookie, "", tls_ca) for role in ROLES}
