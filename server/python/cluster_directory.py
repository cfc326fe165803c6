"""The cluster directory's nodes: `cluster_nodes` (db/schema/0004, 0006).

A row is one incarnation of a node: a restart registers a new row. Every time
is the database's clock (NOW(6)), so nodes on hosts with skewed clocks agree
on who is late. A row whose `gone_at` is NULL is live; the database keeps at
most one live row per name (the `live_name` unique key). Only the calling
tasklet waits on any of these calls (db.py).
"""

import os

import db

DUPLICATE_KEY = 1062

# The reasons a node is marked gone, as `gone_reason` records them.
STOPPED = "stopped"        # it left cleanly (SIGINT/SIGTERM)
TIMEOUT = "timeout"        # another node saw no heartbeat for the timeout
PROCESS_GONE = "process gone"  # its name came back on its host and its pid was dead

_NODE = "id, name, role, address, port, host, pid"


class MarkedGone(Exception):
    """This node's row was marked gone by another node: the cluster has moved
    on without it (its systems run elsewhere), so it must stop."""


class NameTaken(Exception):
    """A live node already has this name."""


def register(role, name, address, port, host, pid, timeout):
    """Inserts this node's live row; returns its id. Raises NameTaken when a
    live node holds `name`, unless that node is late past `timeout` seconds
    (it is then marked gone) or its process is dead on this same host."""
    for _ in range(2):
        try:
            return db.execute("INSERT INTO cluster_nodes (name, role, address, port, host, pid) VALUES (?, ?, ?, ?, ?, ?)",
                              name, role, address, port, host, pid).lastrowid
        except db.Error as e:
            if e.code != DUPLICATE_KEY:
                raise
        holder = _live_holder(name, timeout)
        if holder is None:
            continue  # it left meanwhile
        if holder["late"] or (holder["host"] == host and not _process_alive(holder["pid"])):
            mark_gone(holder["id"], TIMEOUT if holder["late"] else PROCESS_GONE)
            continue
        raise NameTaken("node name %r is taken by live node %d (%s, pid %d on %s, heartbeat %.1f s ago)"
                        % (name, holder["id"], holder["role"], holder["pid"], holder["host"], holder["age_s"]))
    raise NameTaken("node name %r: taken again while registering" % name)


def _live_holder(name, timeout):
    rows = db.query("SELECT " + _NODE + ", TIMESTAMPDIFF(MICROSECOND, heartbeat_at, NOW(6)) / 1e6 AS age_s"
                    " FROM cluster_nodes WHERE live_name = ?", name, named=True)
    if not rows:
        return None
    row = rows[0]
    row["age_s"] = float(row["age_s"])
    row["late"] = row["age_s"] > timeout
    return row


def _process_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def heartbeat(node_id, timeout=None):
    """Records that this node is alive, now. Raises MarkedGone if it is not."""
    # Urgent: ahead of the client work waiting for a connection (a login
    # storm's reads), which would otherwise delay the beat past the timeout.
    # The whole beat is (expire_late's statements too): the next beat waits for it.
    done = db.execute("UPDATE cluster_nodes SET heartbeat_at = NOW(6) WHERE id = ? AND gone_at IS NULL",
                      node_id, timeout=timeout or db.DEFAULT_TIMEOUT, urgent=True)
    if done.rowcount == 0:
        (reason,) = db.query("SELECT gone_reason FROM cluster_nodes WHERE id = ?", node_id, urgent=True)[0]
        raise MarkedGone("node %d was marked gone (%s)" % (node_id, reason))


def mark_gone(node_id, reason):
    """Marks the node gone; False if it already was."""
    return db.execute("UPDATE cluster_nodes SET gone_at = NOW(6), gone_reason = ? WHERE id = ? AND gone_at IS NULL",
                      reason, node_id).rowcount == 1


def expire_late(timeout, statement_timeout=None):
    """Marks gone every live node without a heartbeat for `timeout` seconds;
    returns their rows. Each is checked again as it is marked, so a heartbeat
    that lands in between keeps its node."""
    late_us = int(timeout * 1e6)
    wait = statement_timeout or db.DEFAULT_TIMEOUT
    expired = []
    for node in db.query("SELECT " + _NODE + " FROM cluster_nodes"
                         " WHERE gone_at IS NULL AND heartbeat_at < NOW(6) - INTERVAL ? MICROSECOND",
                         late_us, named=True, timeout=wait, urgent=True):
        if db.execute("UPDATE cluster_nodes SET gone_at = NOW(6), gone_reason = ?"
                      " WHERE id = ? AND gone_at IS NULL AND heartbeat_at < NOW(6) - INTERVAL ? MICROSECOND",
                      TIMEOUT, node["id"], late_us, timeout=wait, urgent=True).rowcount:
            expired.append(node)
    return expired


def live_nodes(role, timeout=None):
    """The live nodes of `role`, by id: dicts of id, name, role, address, port, host, pid."""
    return db.query("SELECT " + _NODE + " FROM cluster_nodes WHERE role = ? AND gone_at IS NULL ORDER BY id",
                    role, named=True, timeout=timeout or db.DEFAULT_TIMEOUT)
