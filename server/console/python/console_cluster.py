"""The console across the cluster: each node's console registers where it
listens in its cluster_nodes row (0009_admin_roles.sql), and a change "for
every node of a role" is sent by the console that got it to each live node
of that role, with the operator's own session (sessions are shared through
the database, console_auth.SharedSessions): each node validates, applies and
audits it as if the operator had asked it directly."""

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


def _post(address, port, path, body, cookie, csrf, tls_ca):
    if tls_ca:
        # Consoles with TLS: the other nodes' certificates are checked against this node's own chain.
        context = ssl.create_default_context(cafile=tls_ca)
        connection = http.client.HTTPSConnection(address, port, timeout=CALL_TIMEOUT_S, context=context)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=CALL_TIMEOUT_S)
    try:
        connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json",
                                                             "Cookie": cookie, "X-CSRF-Token": csrf})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    answer = json.loads(data) if data else {}
    if response.status != 200:
        return {"error": "HTTP %d: %s" % (response.status, answer.get("error", response.reason))}
    return answer


def post_to_role(role, path, body, cookie, csrf, tls_ca=""):
    """POSTs `body` to `path` on every live node of `role` at once; {node name: its answer or error}."""
    if role not in ROLES:
        raise ValueError("role must be one of %s, not %r" % (", ".join(ROLES), role))
    targets = consoles_of(role)

    def one(address, port):
        try:
            return _post(address, port, path, body, cookie, csrf, tls_ca)
        except (OSError, ValueError) as e:  # a node gone meanwhile, or not answering
            return {"error": "%s:%d: %s" % (address, port, e)}
    answers = uthread.parallel([lambda a=address, p=port: one(a, p) for _, address, port in targets],
                               timeout=CALL_TIMEOUT_S + 5)
    return {name: answer for (name, _, _), answer in zip(targets, answers)}
