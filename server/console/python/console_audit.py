"""The audit log: every change made from the console (strategy, FPS, run
budget, kill, profile, console input), with who, from where and when.

Written to the `shard.audit` logger always, kept in memory (the last
entries, for the page), and in the database's `console_audit` table
(0009_admin_roles.sql) when the node has a database. An entry is written
before the change is made, with its outcome after: a change that crashes the
node is still on record."""

import collections
import logging
import time

import db

log = logging.getLogger("shard.audit")

MAX_DETAIL_CHARS = 4000


class Audit:

    def __init__(self, node, database, keep=200):
        self.node, self.database = node, database
        self.recent = collections.deque(maxlen=keep)

    def record(self, who, peer, action, detail, outcome):
        detail = detail if len(detail) <= MAX_DETAIL_CHARS else detail[:MAX_DETAIL_CHARS] + "..."
        action = action[:32]  # the column's size
        entry = {"at": time.time(), "who": who, "peer": peer, "node": self.node, "action": action,
                 "detail": detail, "outcome": outcome}
        self.recent.append(entry)
        log.info("%s from %s on %s: %s %s -> %s", who, peer, self.node, action, detail, outcome)
        if self.database:
            try:
                db.execute("INSERT INTO console_audit (account, peer, node, action, detail, outcome) "
                           "VALUES (?, ?, ?, ?, ?, ?)", who, peer, self.node, action, detail, outcome[:255])
            except (db.Error, TimeoutError) as e:
                log.error("audit entry not stored in the database (%s); it is in this log", e)
        return entry
