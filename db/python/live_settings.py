"""Live settings: a running node follows the database (docs/database.md).

    import live_settings, node_settings
    node_settings.register_all(fps=30, dispatch_strategy="main_loop", run_budget=0.5)  # the node's defaults
    live_settings.start_or_exit("shard sol")  # db.connect(), migrations, first read, the watcher tasklet

    # a subsystem declares its own, with a validator and what applies a new value:
    live_settings.register("chat_max_channels", live_settings.integer(1, 10000), 500,
                           apply=chat.set_max_channels)
    live_settings.get("client_idle_timeout_s")
    live_settings.subscribe("compression", on_compression)          # on_compression(new_value)
    live_settings.on_table_change("chat_channels", reload_channels)  # reload_channels(table, version)

Every `interval` seconds (the setting `settings_interval_s`) a tasklet reads
the `settings` table (name, value text) and `content_versions` (bumped by
triggers on every change of a content table: db/schema/*_content_versions.sql)
through db.py: only that tasklet waits for the database, never the game
loop. A row changed
with plain SQL takes effect at the next poll: its text is parsed by the
setting's validator, then applied; a bad value is refused with a logged
reason and the value in force kept; a deleted row brings the node's default
back. Every applied change is logged, old -> new. A database that is slow or
down is logged once as a warning; the values in force stay, and the watch
resumes by itself when the database answers again.
"""

import logging
import math

import db
import db_migrate
import gameloop
import stackless
import uthread

__all__ = ["Registry", "Watcher", "integer", "number", "choice", "registry", "register", "get", "describe", "subscribe",
           "on_table_change", "start", "start_or_exit", "stop", "DEFAULT_INTERVAL_S"]

log = logging.getLogger("shard.settings")

DEFAULT_INTERVAL_S = 1.0
QUERY_TIMEOUT_S = 5.0  # a poll slower than this counts as the database being down

SETTINGS_SQL = "SELECT name, value FROM settings"
VERSIONS_SQL = "SELECT table_name, version FROM content_versions"
CONTENT_TABLES = ("solar_systems", "chat_channels")  # the tables *_content_versions.sql versions


# ---- validators: text from the table -> a value, or ValueError(the reason) ----

class integer:
    def __init__(self, low, high):
        self.low, self.high = low, high

    def __call__(self, text):
        try:
            value = int(text.strip())
        except ValueError:
            raise ValueError("not an integer; %s" % self) from None
        if not self.low <= value <= self.high:
            raise ValueError("out of range; %s" % self)
        return value

    def __str__(self):
        return "an integer in %d..%d" % (self.low, self.high)


class number:
    """A finite float in [low, high], or (low, high] with low_open."""

    def __init__(self, low, high, low_open=False):
        self.low, self.high, self.low_open = low, high, low_open

    def __call__(self, text):
        try:
            value = float(text.strip())
        except ValueError:
            raise ValueError("not a number; %s" % self) from None
        above = value > self.low if self.low_open else value >= self.low
        if not (math.isfinite(value) and above and value <= self.high):
            raise ValueError("out of range; %s" % self)
        return value

    def __str__(self):
        return "a number in %s%g, %g]" % ("(" if self.low_open else "[", self.low, self.high)


class choice:
    """One of `names`, case-insensitive: the value is the name as declared."""

    def __init__(self, *names):
        self.names = names

    def __call__(self, text):
        for name in self.names:
            if text.strip().lower() == name.lower():
                return name
        raise ValueError("not a known name; %s" % self)

    def __str__(self):
        return "one of " + ", ".join(self.names)


# ---- the registry ----

class Setting:
    def __init__(self, name, parse, default, apply, doc):
        self.name, self.parse, self.default, self.apply, self.doc = name, parse, default, apply, doc
        self.value = default
        self.text = None  # the table's text last seen (None: no row), so each change is handled once
        self.subscribers = []


class Registry:
    """The settings a node knows, and the content tables' subscribers."""

    def __init__(self):
        self.settings = {}
        self.table_subscribers = {table: [] for table in CONTENT_TABLES}
        self.versions = None  # content_versions at the last poll (None: not read yet)
        self.unknown = set()  # names in the table no setting has (logged once)

    def register(self, name, parse, default, apply=None, doc=""):
        """Declares a setting: parse(text) -> value or ValueError(reason);
        apply(value), when given, puts a new value in force (it may refuse
        with ValueError too). The default is what the node runs with while
        the table has no row for it: it is not applied here."""
        if name in self.settings:
            raise ValueError("setting %r is already registered" % name)
        setting = self.settings[name] = Setting(name, parse, default, apply, doc)
        self.unknown.discard(name)  # declared after a read: its row is applied at the next one
        return setting

    def get(self, name):
        return self.settings[name].value

    def describe(self):
        """[{name, value, default, validator, doc}] by name: what an admin may set, and how."""
        return [{"name": s.name, "value": s.value, "default": s.default, "validator": str(s.parse), "doc": s.doc}
                for s in sorted(self.settings.values(), key=lambda s: s.name)]

    def subscribe(self, name, callback):
        """callback(value) after each change of `name` is in force; returns callback."""
        self.settings[name].subscribers.append(callback)
        return callback

    def on_table_change(self, table, callback):
        """callback(table, version) after the content table changed; returns callback."""
        if table not in self.table_subscribers:
            raise ValueError("%r is not a watched content table (%s)" % (table, ", ".join(CONTENT_TABLES)))
        self.table_subscribers[table].append(callback)
        return callback

    def update(self, rows):
        """Applies the settings table's rows [(name, text)]: each changed
        text is validated, applied and logged, or refused and logged."""
        texts = dict(rows)
        for name in sorted(texts.keys() - self.settings.keys() - self.unknown):
            self.unknown.add(name)
            log.warning("settings table: %r is not a setting of this node: ignored", name)
        for setting in self.settings.values():
            text = texts.get(setting.name)
            if text != setting.text:
                setting.text = text
                self._change(setting, text)

    def _change(self, setting, text):
        if text is None:
            new, source = setting.default, "its row is gone: the default"
        else:
            source = "from the settings table"
            try:
                new = setting.parse(text)
            except ValueError as e:
                log.warning("setting %s: refused %r (%s); keeping %r", setting.name, text, e, setting.value)
                return
        if new == setting.value:
            return
        try:
            if setting.apply is not None:
                setting.apply(new)
        except (ValueError, TypeError) as e:
            log.warning("setting %s: refused %r (%s); keeping %r", setting.name, text, e, setting.value)
            return
        old, setting.value = setting.value, new
        log.info("setting %s: %r -> %r (%s)", setting.name, old, new, source)
        for callback in setting.subscribers:
            _notify(callback, new)

    def update_versions(self, rows):
        """Notifies the subscribers of each content table whose version moved."""
        versions = dict(rows)
        previous, self.versions = self.versions, versions
        if previous is None:
            return  # the first read is the baseline: subscribers load the tables themselves
        for table, callbacks in self.table_subscribers.items():
            if versions.get(table) != previous.get(table):
                log.info("content table %s changed (version %s -> %s)", table, previous.get(table), versions.get(table))
                for callback in callbacks:
                    _notify(callback, table, versions.get(table))


def _notify(callback, *args):
    # A subscriber's bug must not stop the watch, nor the other subscribers.
    try:
        callback(*args)
    except Exception:
        log.exception("settings subscriber %r failed", callback)


# ---- the watcher tasklet ----

class Watcher:
    """Polls the database every `settings_interval_s` in its own tasklet."""

    def __init__(self, registry, query_timeout=QUERY_TIMEOUT_S):
        self.registry = registry
        self.query_timeout = query_timeout
        self.healthy = True
        self.tasklet = None

    def poll(self):
        """One read of both tables (blocks the calling tasklet only)."""
        # Urgent: an operator's change must not wait out the client work queued for a connection.
        rows = db.query(SETTINGS_SQL, timeout=self.query_timeout, urgent=True)
        versions = db.query(VERSIONS_SQL, timeout=self.query_timeout, urgent=True)
        self.registry.update(rows)
        self.registry.update_versions(versions)

    def poll_guarded(self):
        try:
            self.poll()
        except (db.Error, TimeoutError) as e:
            if self.healthy:
                log.warning("settings watch: the database does not answer (%s); keeping the values in force",
                            e if isinstance(e, db.Error) else "no answer within %g s" % self.query_timeout)
            self.healthy = False
            return
        if not self.healthy:
            log.info("settings watch: the database answers again; watching")
        self.healthy = True

    def run(self):
        while True:
            uthread.Sleep(self.registry.get("settings_interval_s"))
            self.poll_guarded()

    def start(self):
        self.tasklet = stackless.tasklet(self.run)()
        gameloop.register_service(self.tasklet)  # killed when the loop shuts down
        return self.tasklet

    def stop(self):
        if self.tasklet is not None and self.tasklet.alive:
            self.tasklet.kill()
        self.tasklet = None


def register_interval(registry, interval=DEFAULT_INTERVAL_S):
    return registry.register("settings_interval_s", number(0.05, 60), interval,
                             doc="seconds between two reads of the settings and content_versions tables")


# ---- the node's API: one registry, one watcher ----

registry = Registry()
register_interval(registry)
register = registry.register
get = registry.get
describe = registry.describe
subscribe = registry.subscribe
on_table_change = registry.on_table_change
_watcher = None


def start(migrate=True, schema_dir=db_migrate.SCHEMA_DIR):
    """At a node's start, db connected: applies the pending migrations
    (db_migrate.SchemaTooNew if the database is newer than this code; a
    db.Error if it cannot be reached), reads and applies the settings once,
    then starts the watcher tasklet. Returns the versions migrated."""
    global _watcher
    if _watcher is not None:
        raise RuntimeError("live settings are already started")
    applied = db_migrate.migrate(schema_dir) if migrate else []
    if applied:
        log.info("schema: applied migrations %s (now version %d)", ", ".join(map(str, applied)), applied[-1])
    else:
        log.info("schema: up to date")
    watcher = Watcher(registry)
    watcher.poll()  # errors here stop the start: the node would run on guesses
    watcher.start()
    _watcher = watcher
    log.info("settings watch: every %g s", registry.get("settings_interval_s"))
    return applied


def start_or_exit(program, **connect_settings):
    """A node's start: db.connect(**connect_settings) (the SHARD_DB_*
    settings, those given replacing theirs), then start().
    Raises SystemExit("<program>: refusing to start: <why>") when the node
    cannot run on this database: a schema newer than this code, a database
    it cannot reach, settings it cannot read."""
    try:
        db.connect(**connect_settings)
        return start()
    except db_migrate.SchemaTooNew as e:
        raise SystemExit("%s: refusing to start: %s" % (program, e)) from None
    except (db.Error, TimeoutError, OSError, ValueError) as e:
        raise SystemExit("%s: refusing to start: the database: %s" % (program, e)) from None


def stop():
    global _watcher
    if _watcher is not None:
        _watcher.stop()
    _watcher = None
