"""Schema migrations: db/schema/NNNN_name.sql applied in order, once.

    import db, db_migrate
    db.connect()
    db_migrate.migrate()          # at start: brings the schema to the code's version

Each file's version is its number. `schema_migrations` records what was
applied; a recorded version is never applied again; a database recording a
version newer than the newest file is refused (SchemaTooNew): this code does
not know that schema. Two nodes starting at once do not both migrate: the
runner holds the server's named lock `shard_migrations` meanwhile.

A file holds statements separated by a `;` at the end of a line; `--` lines
are comments. MySQL commits DDL as it goes, so a file that fails half-way
leaves its first statements applied and is not recorded: write each
statement so that it can be run again (IF NOT EXISTS), or fix by hand.
"""

import os
import re

import db

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "schema")
LOCK_NAME = "shard_migrations"
LOCK_TIMEOUT_S = 30

_FILE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class SchemaTooNew(Exception):
    """The database has a schema version newer than this code knows."""


class SchemaError(Exception):
    """The schema directory is malformed (a gap, a duplicate number)."""


def migrations(schema_dir=SCHEMA_DIR):
    """[(version, path)] in order; versions run 1, 2, 3... without gaps."""
    found = []
    for name in os.listdir(schema_dir):
        match = _FILE.match(name)
        if match:
            found.append((int(match.group(1)), os.path.join(schema_dir, name)))
        elif name.endswith(".sql"):
            raise SchemaError("%s: not named NNNN_lowercase_name.sql" % name)
    found.sort()
    for expected, (version, path) in enumerate(found, start=1):
        if version != expected:
            raise SchemaError("%s: expected version %d (versions run 1, 2, 3... once each)" % (path, expected))
    return found


def statements(path):
    """The file's statements: split at a `;` ending a line, comments dropped."""
    with open(path, encoding="utf-8") as f:
        text = [line for line in f if not line.lstrip().startswith("--")]
    return [s.strip() for s in re.split(r";[ \t]*\n", "".join(text) + "\n") if s.strip()]


def current_version(tx):
    tx.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
        version INT PRIMARY KEY, name VARCHAR(255) NOT NULL,
        applied_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP)""")
    (row,) = tx.query("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
    return row[0]


def migrate(schema_dir=SCHEMA_DIR, target=None):
    """Applies the migrations not yet recorded, up to `target` (default: all).
    Returns the versions applied; raises SchemaTooNew."""
    found = migrations(schema_dir)
    newest = found[-1][0] if found else 0
    target = newest if target is None else target
    applied = []
    # One connection throughout: the named lock belongs to it.
    with db.transaction() as tx:
        (got,) = tx.query("SELECT GET_LOCK(?, ?)", LOCK_NAME, LOCK_TIMEOUT_S)
        if got[0] != 1:
            raise TimeoutError("another node holds the migration lock %r" % LOCK_NAME)
        try:
            version = current_version(tx)
            if version > newest:
                raise SchemaTooNew("the database's schema is version %d, this code knows up to %d (%s)"
                                   % (version, newest, schema_dir))
            for number, path in found:
                if number <= version or number > target:
                    continue
                for statement in statements(path):
                    tx.execute(statement)
                tx.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)",
                           number, os.path.basename(path))
                applied.append(number)
        finally:
            tx.query("SELECT RELEASE_LOCK(?)", LOCK_NAME)
    return applied
