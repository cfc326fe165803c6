"""The demo universe of `ops/run.sh`, loaded idempotently into the database
of the SHARD_DB_* settings (schema migrated first): a run on a database that
already has it changes nothing but the demo accounts' password.

  SHARD_DB_HOST=... build/bin/shard python ops/demo/load.py < password-file

Four solar systems in a ring of gates (the cluster directory gives two to
each of two sols, so a jump from Amarr Gate to Caldari Gate or from Delta
Rim to Alpha Prime crosses sols), in two regions when the schema has the
market's (0008), and the accounts demo1..demo3, each with one character, its
wallet (a million ISK) and its ship: demo1 and demo2 in the first system
(they see each other's moves), demo3 in the third (the other sol). The password comes
from standard input, never the command line (`ps` shows that).
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "server", "python"))

import db  # noqa: E402
import db_migrate  # noqa: E402

import accounts  # noqa: E402

# (id, name, security, x, y, z): ids in EVE's range for k-space systems.
SYSTEMS = (
    (30000001, "Alpha Prime", 1.0, 0.0, 0.0, 0.0),
    (30000002, "Amarr Gate", 0.7, 4.0e16, 0.0, 0.0),
    (30000003, "Caldari Gate", 0.4, 4.0e16, 4.0e16, 0.0),
    (30000004, "Delta Rim", 0.1, 0.0, 4.0e16, 0.0),
)
# Regions (the market's, migration 0008, when the schema has them): the ring
# halved, one region on each sol.
REGIONS = ((10000001, "Heartland", (30000001, 30000002)), (10000002, "Frontier", (30000003, 30000004)))
GATE_DISTANCE = 1.5e12  # metres from a system's centre
START_BALANCE = 100_000_000  # hundredths of an ISK: a million ISK to trade with
SHIP_TYPE = 1
# (account, character, system, x): demo1 and demo2 100 km apart.
PILOTS = (
    ("demo1", "Demo One", 30000001, 0.0),
    ("demo2", "Demo Two", 30000001, 1.0e5),
    ("demo3", "Demo Three", 30000003, 0.0),
)


def gates():
    """(gate id, system, destination gate id, x, y, z): a pair of gates on
    each edge of the ring, each leading to the other."""
    rows = []
    for i, (system, *_rest) in enumerate(SYSTEMS):
        neighbour = SYSTEMS[(i + 1) % len(SYSTEMS)][0]
        here, there = 50000000 + 2 * i, 50000000 + 2 * i + 1
        rows.append((here, system, there, GATE_DISTANCE, 0.0, 0.0))
        rows.append((there, neighbour, here, -GATE_DISTANCE, 0.0, 0.0))
    return rows


def load_universe():
    for row in SYSTEMS:
        db.execute("INSERT IGNORE INTO solar_systems (id, name, security, x, y, z) VALUES (?, ?, ?, ?, ?, ?)", *row)
    for row in gates():
        db.execute("INSERT IGNORE INTO gates (id, system_id, destination_gate_id, x, y, z)"
                   " VALUES (?, ?, ?, ?, ?, ?)", *row)
    if db.query("SELECT 1 FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'regions'"):
        for region, name, systems in REGIONS:
            db.execute("INSERT IGNORE INTO regions (id, name) VALUES (?, ?)", region, name)
            for system in systems:
                db.execute("UPDATE solar_systems SET region_id = ? WHERE id = ? AND region_id IS NULL", region, system)
        print("demo: regions %s" % ", ".join(name for _, name, _ in REGIONS))


def load_pilot(account, character, system, x, password):
    """The account (its password set to `password`), its character and ship."""
    try:
        accounts.create(account, password)
        how = "created"
    except accounts.AccountError:  # it exists: same name, the password of this run
        accounts.set_password(account, password)
        how = "password set"
    account_id = db.query("SELECT id FROM accounts WHERE name = ?", account)[0][0]
    db.execute("INSERT IGNORE INTO characters (account_id, name) VALUES (?, ?)", account_id, character)
    character_id = db.query("SELECT id FROM characters WHERE name = ? AND account_id = ?", character, account_id)[0][0]
    db.execute("INSERT IGNORE INTO wallets (character_id, balance) VALUES (?, ?)", character_id, START_BALANCE)
    if not db.query("SELECT 1 FROM ships WHERE owner_id = ?", character_id):
        db.execute("INSERT INTO ships (owner_id, type_id, system_id, x, y, z) VALUES (?, ?, ?, ?, 0, 0)",
                   character_id, SHIP_TYPE, system, x)
    print("demo: account %s (%s): character %d %r in solar system %d" % (account, how, character_id, character,
                                                                         system))


def main():
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        print("load.py: no password on standard input", file=sys.stderr)
        return 2
    db.connect(pool_size=1)
    try:
        db_migrate.migrate()
        load_universe()
        for pilot in PILOTS:
            load_pilot(*pilot, password)
    finally:
        db.close()
    print("demo: %d solar systems, %d gates" % (len(SYSTEMS), len(gates())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
