"""The `chat` service on a sol (docs/services.md): a local channel per solar
system and named channels, each message fanned out as a Notification
(service "chat", event "message", args [channel, sender_character_id,
sender_name, text, unix_time]) to every member online.

"local" is the calling session's system's channel: its members are the
sessions in space in that system, all on this sol (the sol hosts the whole
system), so it needs no database. A named channel lives in `chat_channels`
and `chat_members` (0004): join() creates it on first use; its members may
play on any sol, so a message goes through sol_notify's to_characters()
(the proxies that hold them). Names, text and the number of channels are
bounded; a session may send RATE messages per second, BURST at once.
"""

import re
import time

import db

import sol_sessions
from rpc_services import exposed

LOCAL = "local"
MAX_TEXT = 1000             # characters per message
MAX_CHANNELS = 20           # named channels a character may be in
MAX_MEMBERS = 1000          # characters in a named channel: one message's fan-out
CHANNEL = re.compile(r"[A-Za-z0-9_-]{3,32}")
RATE, BURST = 2.0, 5        # messages per second per session, and the bucket's size
RACES = (1062, 1213)        # ER_DUP_ENTRY, ER_LOCK_DEADLOCK: two joins creating one channel at once


def _text(text):
    if not isinstance(text, str):
        raise TypeError("a chat message is a string, not %s" % type(text).__name__)
    if not text or len(text) > MAX_TEXT:
        raise ValueError("a chat message has 1 to %d characters, not %d" % (MAX_TEXT, len(text)))
    return text


def _channel(name):
    if not isinstance(name, str):
        raise TypeError("a channel name is a string, not %s" % type(name).__name__)
    if name != LOCAL and not CHANNEL.fullmatch(name):
        raise ValueError("a channel name has 3 to 32 letters, digits, _ or -")
    return name


def _character(session):
    character = session.attributes.get("character_id")
    if not isinstance(character, int):
        raise LookupError("session %d plays no character" % session.session_id)
    return character


class Chat:
    service_name = "chat"

    def __init__(self, node):
        self.node = node
        self.buckets = {}  # session id -> (tokens, when): the rate limit

    def _local_members(self, session):
        if not session.in_space:
            raise ValueError("the ship is docked: no local channel (enter space first)")
        return self.node.sessions.in_system(session.attributes.get("solar_system_id"))

    def _channel_id(self, name, character):
        """The named channel's id if `character` is in it, else LookupError."""
        rows = db.query("SELECT c.id FROM chat_channels c JOIN chat_members m ON m.channel_id = c.id"
                        " WHERE c.name = ? AND m.character_id = ?", name, character)
        if not rows:
            raise LookupError("not in channel %r: join it first" % name)
        return rows[0][0]

    def _spend(self, session):
        now = time.monotonic()
        tokens, when = self.buckets.get(session.session_id, (BURST, now))
        tokens = min(BURST, tokens + (now - when) * RATE)
        if tokens < 1:
            raise ValueError("too many messages: at most %g per second" % RATE)
        self.buckets[session.session_id] = (tokens - 1, now)
        if len(self.buckets) > 2 * len(self.node.sessions.by_id) + 100:  # forget sessions that left
            self.buckets = {k: v for k, v in self.buckets.items() if k in self.node.sessions.by_id}

    @exposed(role="player")
    def send(self, channel, text):
        """Sends `text` to `channel`'s members (the sender included)."""
        session = sol_sessions.current()
        _channel(channel), _text(text)
        character = _character(session)
        args = (channel, character, session.attributes.get("character_name") or "", text, time.time())
        if channel == LOCAL:
            members = self._local_members(session)
            self._spend(session)
            self.node.notifier.to_sessions([s.session_id for s in members], "chat", "message", *args)
            return None
        channel_id = self._channel_id(channel, character)
        self._spend(session)
        members = [row[0] for row in db.query("SELECT character_id FROM chat_members WHERE channel_id = ?",
                                              channel_id)]
        self.node.notifier.to_characters(members, "chat", "message", *args)
        return None

    @exposed(role="player")
    def join(self, channel):
        """Joins the named `channel`, creating it if nobody has yet."""
        session = sol_sessions.current()
        if _channel(channel) == LOCAL:
            raise ValueError("the local channel is joined by entering space")
        character = _character(session)
        try:
            with db.transaction() as t:
                # The character's row, then the channel's: its counts cannot change under us.
                t.query("SELECT id FROM characters WHERE id = ? FOR UPDATE", character)
                rows = t.query("SELECT id FROM chat_channels WHERE name = ? FOR UPDATE", channel)
                channel_id = rows[0][0] if rows else t.execute(
                    "INSERT INTO chat_channels (name, owner_id) VALUES (?, ?)", channel, character).lastrowid
                joined, members = t.query("SELECT COALESCE(SUM(character_id = ?), 0), COUNT(*) FROM chat_members"
                                          " WHERE channel_id = ?", character, channel_id)[0]
                if joined:
                    return None
                if members >= MAX_MEMBERS:
                    raise ValueError("channel %r is full: at most %d members" % (channel, MAX_MEMBERS))
                if t.query("SELECT COUNT(*) FROM chat_members WHERE character_id = ?", character)[0][0] >= MAX_CHANNELS:
                    raise ValueError("a character is in at most %d channels" % MAX_CHANNELS)
                t.execute("INSERT INTO chat_members (channel_id, character_id) VALUES (?, ?)", channel_id, character)
        except db.Error as e:
            if e.code in RACES:
                raise ValueError("channel %r was being created by another: join again" % channel) from None
            raise
        return None

    @exposed(role="player")
    def leave(self, channel):
        """Leaves the named `channel` (nothing if not in it)."""
        session = sol_sessions.current()
        if _channel(channel) == LOCAL:
            raise ValueError("the local channel is left by leaving space")
        db.execute("DELETE m FROM chat_members m JOIN chat_channels c ON c.id = m.channel_id"
                   " WHERE c.name = ? AND m.character_id = ?", channel, _character(session))
        return None

    @exposed(role="player")
    def channels(self):
        """The channels the character is in: "local" while in space, then the named ones by name."""
        session = sol_sessions.current()
        rows = db.query("SELECT c.name FROM chat_channels c JOIN chat_members m ON m.channel_id = c.id"
                        " WHERE m.character_id = ? ORDER BY c.name", _character(session))
        return ([LOCAL] if session.in_space else []) + [row[0] for row in rows]

    @exposed(role="player")
    def members(self, channel):
        """The names of `channel`'s members (the caller must be one)."""
        session = sol_sessions.current()
        _channel(channel)
        if channel == LOCAL:
            return sorted(s.attributes.get("character_name") or "" for s in self._local_members(session))
        channel_id = self._channel_id(channel, _character(session))
        return [row[0] for row in db.query("SELECT ch.name FROM chat_members m JOIN characters ch"
                                           " ON ch.id = m.character_id WHERE m.channel_id = ? ORDER BY ch.name",
                                           channel_id)]


def register(services, node):
    services.register(Chat(node))
