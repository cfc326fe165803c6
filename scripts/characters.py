"""The `characters` service: a proxy's own, one per logged-in session
(session_calls.SessionServices registers it), so it works before the session
is in any solar system (docs/services.md).

list() and create() read and write the account's characters; select() puts
the session in the solar system of the character's ship
(ClientSessions.change: the sol of that system gets the session). A new
character gets, in one transaction, a ship in the starter system (the
solar system of lowest id) and a wallet with STARTING_BALANCE.
"""

import re

import db

from rpc_services import exposed

MAX_CHARACTERS = 3                   # per account
STARTING_BALANCE = 100000000         # hundredths of ISK: 1,000,000.00 ISK
STARTER_SHIP_TYPE = 1
# 3 to 32 characters: letters, digits, spaces, ' and -; no leading, trailing or double space.
NAME = re.compile(r"[A-Za-z0-9'-]+( [A-Za-z0-9'-]+)*")
NAME_LENGTH = (3, 32)
DUPLICATE_KEY = 1062                 # MariaDB's ER_DUP_ENTRY

_CHARACTERS = ("SELECT c.id, c.name, s.system_id, s.id FROM characters c"
               " LEFT JOIN ships s ON s.id = (SELECT MIN(id) FROM ships WHERE owner_id = c.id)"
               " WHERE c.account_id = ?")


def check_name(name):
    """`name` if it is a valid character name, else ValueError (TypeError: not a string) saying why."""
    if not isinstance(name, str):
        raise TypeError("a character name must be a string, not %s" % type(name).__name__)
    if not NAME_LENGTH[0] <= len(name) <= NAME_LENGTH[1]:
        raise ValueError("a character name has %d to %d characters" % NAME_LENGTH)
    if not NAME.fullmatch(name):
        raise ValueError("a character name is made of letters, digits, ' and -, words separated by one space")
    return name


def _as_dict(row):
    character_id, name, system_id, ship_id = row
    return {"character_id": character_id, "name": name, "solar_system_id": system_id, "ship_id": ship_id}


class Characters:
    """The session's characters: its account's."""

    service_name = "characters"

    def __init__(self, session, sessions):
        self.session, self.sessions = session, sessions  # client_sessions.Session, ClientSessions

    @exposed(role="player")
    def list(self):
        """[{character_id, name, solar_system_id, ship_id}] of the account, by id."""
        rows = db.query(_CHARACTERS + " ORDER BY c.id", self.session.account_id)
        return [_as_dict(row) for row in rows]

    @exposed(role="player")
    def create(self, name):
        """A new character of the account named `name`, with a ship in the
        starter system and a wallet: the same dict as list()'s."""
        check_name(name)
        try:
            with db.transaction() as t:
                # The account's row serializes two creations of one account (the bound below).
                t.query("SELECT id FROM accounts WHERE id = ? FOR UPDATE", self.session.account_id)
                count = t.query("SELECT COUNT(*) FROM characters WHERE account_id = ?", self.session.account_id)[0][0]
                if count >= MAX_CHARACTERS:
                    raise ValueError("an account has at most %d characters" % MAX_CHARACTERS)
                system = t.query("SELECT MIN(id) FROM solar_systems")[0][0]
                if system is None:
                    raise LookupError("there is no solar system to start in")
                character_id = t.execute("INSERT INTO characters (account_id, name) VALUES (?, ?)",
                                         self.session.account_id, name).lastrowid
                ship_id = t.execute("INSERT INTO ships (owner_id, type_id, system_id, x, y, z)"
                                    " VALUES (?, ?, ?, 0, 0, 0)", character_id, STARTER_SHIP_TYPE, system).lastrowid
                t.execute("INSERT INTO wallets (character_id, balance) VALUES (?, ?)", character_id, STARTING_BALANCE)
        except db.Error as e:
            if e.code == DUPLICATE_KEY:
                raise ValueError("the name %r is taken" % name) from None
            raise
        return {"character_id": character_id, "name": name, "solar_system_id": system, "ship_id": ship_id}

    @exposed(role="player")
    def select(self, character_id):
        """Plays `character_id` (one of the account's): the session enters
        the solar system of its ship, in space. Returns the session's attributes."""
        if not isinstance(character_id, int) or isinstance(character_id, bool):
            raise TypeError("character_id must be an int")
        rows = db.query("SELECT c.name, s.id, s.system_id, s.x, s.y, s.z FROM characters c"
                        " LEFT JOIN ships s ON s.owner_id = c.id WHERE c.id = ? AND c.account_id = ?"
                        " ORDER BY s.id LIMIT 1", character_id, self.session.account_id)
        if not rows:
            raise LookupError("no character %d on this account" % character_id)
        name, ship_id, system_id, x, y, z = rows[0]
        if ship_id is None:
            raise LookupError("character %d has no ship" % character_id)
        self.sessions.change(self.session, {
            "character_id": character_id, "character_name": name, "ship_id": ship_id,
            "solar_system_id": system_id, "ship_position": [x, y, z]})
        return dict(self.session.attributes)


def register(services, session, sessions):
    services.register(Characters(session, sessions))
