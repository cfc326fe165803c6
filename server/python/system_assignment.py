"""Which live sol node hosts which solar system: `system_assignments`.

plan() is the rule, a pure function: balanced (every live sol gets n // k or
n // k + 1 of the n systems), deterministic (same directory, same answer,
whichever node computes it) and moving as few systems as it can (a system
stays where it is unless its sol is gone or holds more than its share).
rebalance() applies it in one transaction. A system assigned to a gone node
counts as unassigned.

Sol nodes call rebalance() when they start, leave, or see the set of live
sols change or a system without a live host (check_needed()); any number may
do so at once: each takes the same row locks first, so they run one after
the other, and the later ones find nothing to do.
"""

import db

DEADLOCK = 1213          # InnoDB (and Galera's certification) chose this transaction to fail
LOCK_WAIT_TIMEOUT = 1205
TRIES = 3


def plan(systems, live_sols, current):
    """{system_id: node_id} for each system that must move or be assigned.
    systems, live_sols: ids; current: {system_id: node_id} as assigned now."""
    if not live_sols:
        return {}
    systems = sorted(systems)
    live_sols = sorted(live_sols)
    held = {node: [s for s in systems if current.get(s) == node] for node in live_sols}
    # The n % k sols allowed one more: those holding the most now (fewest
    # moves), ties to the lower id.
    n, k = len(systems), len(live_sols)
    ranked = sorted(live_sols, key=lambda node: (-len(held[node]), node))
    share = {node: n // k + (1 if rank < n % k else 0) for rank, node in enumerate(ranked)}
    free = [s for s in systems if current.get(s) not in share]  # unassigned, or on a gone node
    for node in live_sols:
        free.extend(held[node][share[node]:])  # over its share: its highest ids go
    free.sort()
    moves = {}
    for node in live_sols:
        room = share[node] - min(len(held[node]), share[node])
        for system in free[:room]:
            moves[system] = node
        free = free[room:]
    return moves


def rebalance(timeout=db.DEFAULT_TIMEOUT):
    """Applies plan() to the directory in one transaction; returns (moves,
    the live sols' ids it balanced over). Retries a transaction the server chose to fail for a deadlock."""
    for attempt in range(TRIES):
        try:
            return _rebalance_once(timeout)
        except db.Error as e:
            if e.code not in (DEADLOCK, LOCK_WAIT_TIMEOUT) or attempt == TRIES - 1:
                raise
    raise AssertionError("unreachable")


def _rebalance_once(timeout):
    with db.transaction(timeout) as tx:
        # The lock every rebalancer takes first, in the same order: the
        # systems' rows (nothing else writes them; heartbeats are not held
        # up). The reads after it see every rebalance committed before.
        systems = [row[0] for row in tx.query("SELECT id FROM solar_systems ORDER BY id FOR UPDATE")]
        live = [row[0] for row in tx.query(
            "SELECT id FROM cluster_nodes WHERE role = 'sol' AND gone_at IS NULL ORDER BY id")]
        current = dict(tx.query("SELECT system_id, node_id FROM system_assignments"))
        moves = plan(systems, live, current)
        for system, node in sorted(moves.items()):
            tx.execute("INSERT INTO system_assignments (system_id, node_id) VALUES (?, ?)"
                       " ON DUPLICATE KEY UPDATE node_id = VALUES(node_id)", system, node)
        return moves, live


def check_needed(known_sols, timeout=db.DEFAULT_TIMEOUT):
    """Whether the live sols differ from `known_sols` (ids) or a system has no
    live host: two small reads, no lock."""
    live = [row[0] for row in db.query(
        "SELECT id FROM cluster_nodes WHERE role = 'sol' AND gone_at IS NULL ORDER BY id", timeout=timeout)]
    ((unhosted,),) = db.query(
        "SELECT COUNT(*) FROM solar_systems s LEFT JOIN system_assignments a ON a.system_id = s.id"
        " LEFT JOIN cluster_nodes n ON n.id = a.node_id AND n.gone_at IS NULL WHERE n.id IS NULL", timeout=timeout)
    return live != list(known_sols) or (unhosted > 0 and bool(live))


def routes(timeout=db.DEFAULT_TIMEOUT):
    """{system_id: node_id} for the systems hosted by a live node."""
    return dict(db.query("SELECT a.system_id, a.node_id FROM system_assignments a"
                         " JOIN cluster_nodes n ON n.id = a.node_id WHERE n.gone_at IS NULL", timeout=timeout))
