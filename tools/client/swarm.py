"""A swarm of game-client bots, each a tasklet in one `shard python` process
(the engine's tasklet sockets make every bot's blocking socket calls block
only its own tasklet: docs/sockets.md). Each bot logs in to a proxy through
game_client.py, picks its character (creating one the first time), then runs
a behaviour mix for the duration; the swarm reports per-operation latency
percentiles as JSON and a PNG with one line per dispatch strategy.

    build/bin/shard python tools/client/swarm.py --port 26000 --bots 50 --create-accounts \\
        --mix move=1,ping=0.2,chat=0.05,trade=0.01 --duration 30 \\
        --strategies main_loop,pending_call --json swarm.json --png swarm.png

The CLI is documented in tools/client/README.md (ops/run.sh starts bots with
`--duration 0`: until Ctrl-C). With --native the bots are shard-bots, a
C++ child process (tools/bots, native_bots.py), and this process keeps the
accounts, the strategies and the report. With --trade-log FILE either kind
of bot appends each trade's outcome there, for the market audit
(tools/bench/market_audit.py) to hold against the database.
"""

import argparse
import json
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import game_client  # noqa: E402
import native_bots  # noqa: E402
import swarm_stats  # noqa: E402

OPS = ("move", "ping", "chat", "trade")
MAX_POLL_S = 0.5          # a bot looks at the stop flag at least this often
SERIES_CAP = 200_000      # ping samples kept per phase for the plot's time line
STOP_GRACE_S = 20.0       # bots still running this long after the stop are killed
LOGIN_ATTEMPTS = 4
TRADE_ATTEMPTS = 3        # sends of one trade's request id while no answer comes
RETRIED = ("TIMEOUT", "UNAVAILABLE")  # RpcError kinds that do not say whether the call ran
MARKET_BUSY = "MarketBusy"  # the market's refusal to queue more for a book: sent again
BUSY = re.compile(r"busy with other logins; retry in (\d+) s")  # the proxy's refusal in a login storm
# The Python that draws the PNG: Debian's, where python3-matplotlib is (SWARM_PLOT_PYTHON overrides).
PLOT_PYTHON = os.environ.get("SWARM_PLOT_PYTHON", "/usr/bin/python3.11")


def parse_mix(text):
    mix = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        op, _, rate = item.partition("=")
        if op not in OPS:
            raise argparse.ArgumentTypeError("unknown operation %r in --mix (known: %s)" % (op, ", ".join(OPS)))
        try:
            mix[op] = float(rate)
        except ValueError:
            raise argparse.ArgumentTypeError("--mix %s: the rate %r is not a number" % (op, rate)) from None
        if not 0 <= mix[op] <= 100:
            raise argparse.ArgumentTypeError("--mix %s: a rate per bot per second in [0, 100]" % op)
    return mix


def process_usage(pid):
    """(CPU seconds, RSS KiB) of a process on this machine, from /proc; None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/%d/status" % pid, encoding="ascii") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), rss


def parse_watch(text):
    watch = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, pid = item.partition("=")
        if not pid.isdigit():
            raise argparse.ArgumentTypeError("--watch takes NAME=PID,... (got %r)" % item)
        watch.append((name, int(pid)))
    return watch


class Phase:
    """What the bots measured while one dispatch strategy was in force, and
    what the watched processes (the nodes, on this machine) spent meanwhile."""

    def __init__(self, strategy, watch=()):
        self.strategy = strategy
        self.watch = {name: (pid, process_usage(pid)) for name, pid in watch}
        self.started = time.monotonic()
        self.cpu_started = _cpu_s()
        self.ended = self.cpu_ended = None
        self.watched = {}
        self.ops = {}
        self.counts = {"moves_sent": 0, "move_updates": 0, "chat_deliveries": 0, "trade_notifications": 0}
        self.ping_series = []
        self.native_cpu_s = None    # with --native: the bots' process's CPU time, not this one's

    def take_native(self, event):
        """What shard-bots measured in this phase (its "phase" event)."""
        for op, raw in event["ops"].items():
            if raw["count"] or raw["errors"]:
                self.ops[op] = swarm_stats.Histogram.from_raw(raw)
        self.counts.update(event["counts"])
        self.ping_series = [tuple(sample) for sample in event["ping_series"]]
        self.native_cpu_s = event["swarm_cpu_s"]

    def histogram(self, op):
        h = self.ops.get(op)
        if h is None:
            h = self.ops[op] = swarm_stats.Histogram()
        return h

    def end(self):
        self.ended, self.cpu_ended = time.monotonic(), _cpu_s()
        for name, (pid, start) in self.watch.items():
            end = process_usage(pid)
            if start is not None and end is not None:
                self.watched[name] = {"cpu_s": round(end[0] - start[0], 3), "rss_kib": end[1]}

    def to_json(self, connected):
        seconds = max(1e-9, (self.ended or time.monotonic()) - self.started)
        cpu = self.native_cpu_s if self.native_cpu_s is not None else (self.cpu_ended or _cpu_s()) - self.cpu_started
        rates = {name + "_per_s": round(count / seconds, 2) for name, count in self.counts.items()}
        return {"strategy": self.strategy, "duration_s": round(seconds, 3), **self.counts, **rates,
                "swarm_cpu_s": round(cpu, 3),
                "swarm_cpu_ms_per_bot_s": round(1000.0 * cpu / seconds / connected, 4) if connected else None,
                "ops": {op: h.to_json() for op, h in sorted(self.ops.items())},
                "processes": {name: dict(usage, cpu_ms_per_bot_s=round(1000.0 * usage["cpu_s"] / seconds / connected, 4)
                                         if connected else None, rss_kib_per_bot=round(usage["rss_kib"] / connected, 1)
                                         if connected else None) for name, usage in self.watched.items()},
                "ping_series": self.ping_series}


def _cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Swarm:
    def __init__(self, options):
        self.options = options
        self.phase = None           # None between phases: nothing is recorded
        self.phases = []
        self.setup = Phase("setup")  # logins and character selection
        self.stopping = False
        self.connected = 0
        self.running = 0
        self.bots = []
        self.last_move = {}         # ship id -> (sequence, monotonic time) of its bot's last move
        self.trade_log = open(options.trade_log, "a", encoding="utf-8") if options.trade_log else None
        self.max_rss_kib = None     # with --native: the bots' process's

    def record(self, op, seconds):
        if self.phase is not None:
            self.phase.histogram(op).add(seconds)
            if op == "ping" and len(self.phase.ping_series) < SERIES_CAP:
                self.phase.ping_series.append((round(time.monotonic() - self.phase.started, 3),
                                               round(seconds * 1000.0, 3)))

    def failed(self, op, error):
        phase = self.setup if op == "login" else self.phase
        if phase is not None:
            phase.histogram(op).error(("%s: %s" % (type(error).__name__, error))[:200])

    def count(self, name, n=1):
        if self.phase is not None:
            self.phase.counts[name] += n

    def log_trade(self, request, outcome, **fields):
        """One line of the trade log (tools/bots/trade_log.h has the format)."""
        if self.trade_log is not None:
            self.trade_log.write(json.dumps(dict(request, outcome=outcome, **fields)) + "\n")
            self.trade_log.flush()


class Bot:
    def __init__(self, swarm, index):
        self.swarm, self.index = swarm, index
        self.name = "%s%d" % (swarm.options.prefix, index)
        self.client = None
        self.rng = random.Random(index)

    def run(self):
        swarm = self.swarm
        swarm.running += 1
        try:
            self.start()
        except Exception as e:  # a bot that cannot start is counted, the others go on
            swarm.failed("login", e)
            if self.client is not None:
                self.client.close()
            swarm.running -= 1
            return
        swarm.connected += 1
        try:
            self.behave()
        except game_client.ClientError as e:
            swarm.failed("connection", e)
        finally:
            swarm.connected -= 1
            swarm.running -= 1
            self.client.close()

    def start(self):
        swarm = self.swarm
        time.sleep(self.rng.uniform(0, swarm.options.ramp))
        started = time.monotonic()
        self.log_in()
        characters = self.client.call("characters", "list")
        character = characters[0] if characters else self.client.call("characters", "create", self.name)
        self.character = character["character_id"]
        attributes = self.client.call("characters", "select", self.character)
        swarm.setup.histogram("login").add(time.monotonic() - started)
        self.ship = attributes.get("ship_id")
        self.position = list(attributes.get("ship_position") or (0.0, 0.0, 0.0))
        self.velocity = self.heading()
        self.last_move = time.monotonic()

    def log_in(self):
        """Connects and logs in; a connection lost before the LoginReply is
        tried again (a real client would), and so is a proxy busy with other
        logins, after the time it names; other refusals are not."""
        o, swarm = self.swarm.options, self.swarm
        for attempt in range(LOGIN_ATTEMPTS):
            try:
                self.client = game_client.connect(o.host, o.port, ca_file=None if o.plain else o.ca,
                                                  timeout=o.timeout, on_notification=self.on_notification,
                                                  on_move=self.on_move, source_address=self.source_address())
                self.client.login(self.name, o.password)
                return
            except (game_client.Disconnected, game_client.CallTimeout, game_client.LoginFailed) as e:
                busy = BUSY.search(e.reason) if isinstance(e, game_client.LoginFailed) else None
                if self.client is not None:
                    self.client.close()
                if attempt + 1 == LOGIN_ATTEMPTS or (isinstance(e, game_client.LoginFailed) and busy is None):
                    raise
                swarm.setup.histogram("login_retry").error(("%s: %s" % (type(e).__name__, e))[:200])
                if busy:
                    time.sleep(int(busy.group(1)) * self.rng.uniform(1.0, 2.0))
                else:
                    time.sleep(self.rng.uniform(0.5, 1.0) * 2 ** attempt)

    def source_address(self):
        """None (the system's choice), or with --sources N, one of N loopback addresses 127.1.x.y."""
        sources = self.swarm.options.sources
        if sources <= 1:
            return None
        k = self.index % sources
        return "127.1.%d.%d" % (k // 250, k % 250 + 1)

    def heading(self):
        """A random direction at the swarm's speed."""
        v = [self.rng.gauss(0, 1) for _ in range(3)]
        norm = max(1e-9, sum(c * c for c in v) ** 0.5)
        return [c * self.swarm.options.speed / norm for c in v]

    def on_move(self, move):
        # The sol's updates carry its state, not the sender's clock: the delivery time comes from the
        # swarm's own note of when the mover sent that sequence (the bots share one process and clock).
        self.swarm.count("move_updates")
        sent = self.swarm.last_move.get(move.entity_id)
        if sent is not None and sent[0] == move.sequence:
            self.swarm.record("move_delivery", time.monotonic() - sent[1])

    def on_notification(self, note):
        if note.service == "chat" and note.event == "message":
            self.swarm.count("chat_deliveries")
        elif note.service == "market" and note.event == "trade":
            self.swarm.count("trade_notifications")

    def behave(self):
        mix = self.swarm.options.mix
        now = time.monotonic()
        # Moves at a fixed period (a client's tick), from a random phase; the rest as Poisson arrivals.
        due = {op: now + (self.rng.uniform(0, 1.0 / rate) if op == "move" else self.rng.expovariate(rate))
               for op, rate in mix.items() if rate > 0}
        while not self.swarm.stopping:
            op = min(due, key=due.get) if due else None
            wait = MAX_POLL_S if op is None else min(MAX_POLL_S, due[op] - time.monotonic())
            if wait > 0:
                self.client.poll(wait)
                continue
            rate = mix[op]
            if op == "move":
                due[op] += 1.0 / rate
            else:  # a bot that fell behind (its calls were slow) does not fire the missed calls in a burst
                due[op] = max(due[op], time.monotonic()) + self.rng.expovariate(rate)
            self.act(op)

    def act(self, op):
        started = time.monotonic()
        try:
            if op == "move":
                self.move()
                return
            if op == "ping":
                self.client.call("ping", "ping")
            elif op == "chat":
                self.client.call("chat", "send", "local", "%s says hello" % self.name)
            elif op == "trade":
                self.trade()
        except game_client.RpcError as e:
            self.swarm.failed(op, e)
            return
        except game_client.CallTimeout as e:
            self.swarm.failed(op, e)
            return
        self.swarm.record(op, time.monotonic() - started)

    def move(self):
        if self.ship is None:
            return
        now = time.monotonic()
        # Where the ship got to at its velocity, with the real time since the last move (at most 5 s: the
        # sol's speed check banks at most 1 s, and --speed is well under its limit).
        dt = min(5.0, now - self.last_move)
        self.last_move = now
        if self.rng.random() < 0.1:
            self.velocity = self.heading()
        self.position = [p + v * dt for p, v in zip(self.position, self.velocity)]
        sequence = self.client.move(self.ship, tuple(self.position), tuple(self.velocity))
        self.swarm.last_move[self.ship] = (sequence, now)
        self.swarm.count("moves_sent")

    def trade(self):
        """A market order with an id of its own, sent again with that id while
        no answer says whether it ran (the market's idempotency makes that
        safe); its outcome goes to the trade log."""
        o = self.swarm.options
        request = {"character_id": self.character, "request_id": uuid.uuid4().hex,
                   "side": self.rng.choice(("buy", "sell")),
                   "type_id": o.trade_type + self.rng.randrange(o.trade_types),
                   "quantity": self.rng.randint(1, 5),
                   "price": max(1, o.trade_price + self.rng.randint(-o.trade_price // 10, o.trade_price // 10))}
        for attempt in range(TRADE_ATTEMPTS):
            try:
                answer = self.client.call("market", "place", request["side"], request["type_id"],
                                          request["quantity"], request["price"], request["request_id"])
                break
            except (game_client.CallTimeout, game_client.RpcError) as e:
                retried = (isinstance(e, game_client.CallTimeout) or e.kind in RETRIED
                           or (e.kind == "APPLICATION" and e.type == MARKET_BUSY))
                if retried and attempt + 1 < TRADE_ATTEMPTS:
                    continue
                # A refusal says nothing of an earlier send that got no answer: it may have run.
                outcome = "unknown" if retried or attempt > 0 else "refused"
                self.swarm.log_trade(request, outcome, error=str(e)[:200])
                raise
            except game_client.ClientError as e:  # the connection is gone: the answer with it
                self.swarm.log_trade(request, "unknown", error=str(e)[:200])
                raise
        self.swarm.log_trade(request, "answered", order_id=answer["order_id"], filled=answer["filled"],
                             trades=len(answer["trades"]))


# --- accounts and strategies: the database (the swarm is an operator's tool) -------

def create_accounts(options):
    """Makes the accounts PREFIX0..N-1 that do not exist yet, with the bots'
    password; the hashes (scrypt, ~50 ms each) run on worker threads, a few
    at a time, so the loop and the other creations go on."""
    import accounts
    import db
    import uthread

    names = ["%s%d" % (options.prefix, i) for i in range(options.bots)]
    existing = set()
    for start in range(0, len(names), 1000):
        chunk = names[start:start + 1000]
        rows = db.query("SELECT name FROM accounts WHERE name IN (%s)" % ",".join("?" * len(chunk)), *chunk)
        existing.update(name for (name,) in rows)
    missing = [name for name in names if name not in existing]
    # This process's hashes are the swarm's own: as many at once as asked
    # (accounts' gate would otherwise run half the CPUs' worth).
    accounts.gate.configure(options.create_parallel, options.create_parallel)
    for start in range(0, len(missing), options.create_parallel):
        batch = missing[start:start + options.create_parallel]
        uthread.parallel([lambda name=name: accounts.create(name, options.password) for name in batch],
                         timeout=120)
    return len(missing)


def settings_interval():
    import db
    rows = db.query("SELECT value FROM settings WHERE name = 'settings_interval_s'")
    try:
        return float(rows[0][0]) if rows else 1.0
    except ValueError:
        return 1.0


def set_strategy(strategy, wait_s):
    """Every node's dispatch strategy through the live setting, then a wait
    long enough for every node's watcher to have read it (two intervals)."""
    import db
    db.execute("REPLACE INTO settings (name, value) VALUES ('dispatch_strategy', ?)", strategy)
    time.sleep(wait_s)


def current_strategy():
    import db
    rows = db.query("SELECT value FROM settings WHERE name = 'dispatch_strategy'")
    return rows[0][0] if rows else None


def restore_strategy(value):
    import db
    if value is None:
        db.execute("DELETE FROM settings WHERE name = 'dispatch_strategy'")
    else:
        db.execute("REPLACE INTO settings (name, value) VALUES ('dispatch_strategy', ?)", value)


# --- the run ------------------------------------------------------------------------

def run(options):
    import stackless

    needs_db = options.create_accounts or options.strategies
    if needs_db:
        import db
        db.connect()  # SHARD_DB_* (docs/database.md)
    try:
        if options.create_accounts:
            made = create_accounts(options)
            print("swarm: %d accounts created, %d existed" % (made, options.bots - made), file=sys.stderr, flush=True)
        original = current_strategy() if options.strategies else None
        try:
            return drive_native(options) if options.native is not None else drive(options, stackless)
        finally:
            if options.strategies:
                restore_strategy(original)
    finally:
        if needs_db:
            db.close()


def drive(options, stackless):
    swarm = Swarm(options)
    interrupted = []

    def on_sigint(signum, frame):  # the phase ends; the bots are stopped after it is measured
        interrupted.append(signum)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        swarm.bots = [Bot(swarm, i) for i in range(options.bots)]
        tasklets = [stackless.tasklet(bot.run)() for bot in swarm.bots]
        # Logins: wait until every bot started or gave up (bounded by the ramp and the timeouts).
        start_deadline = time.monotonic() + options.ramp + 3 * options.timeout + 30
        while (swarm.connected + swarm.setup.histogram("login").errors < options.bots
               and time.monotonic() < start_deadline and not interrupted):
            time.sleep(0.1)
        swarm.setup.end()
        strategies, wait_s = logged_in(swarm, options)
        for strategy in strategies:
            if interrupted:
                break
            if strategy is not None:
                set_strategy(strategy, wait_s)
            phase = Phase(strategy or "as configured", options.watch)
            swarm.phases.append(phase)
            swarm.phase = phase
            run_phase(options, interrupted, lambda: progress(swarm, phase))
            phase.end()
            swarm.phase = None
            print("swarm: phase %s done" % phase.strategy, file=sys.stderr, flush=True)
        connected = swarm.connected
        swarm.stopping = True
        deadline = time.monotonic() + STOP_GRACE_S
        while swarm.running and time.monotonic() < deadline:
            time.sleep(0.05)
        for t in tasklets:
            if t.alive:
                t.kill()
    finally:
        signal.signal(signal.SIGINT, previous)
    return report(options, swarm, connected)


def drive_native(options):
    """The run with shard-bots as the bots: the same phases and report, from its events."""
    swarm = Swarm(options)
    interrupted = []

    def on_sigint(signum, frame):  # as drive(): the phase ends, then the bots stop (the child ignores SIGINT)
        interrupted.append(signum)

    previous = signal.signal(signal.SIGINT, on_sigint)
    bots = None
    try:
        bots = native_bots.NativeBots(options.native or native_bots.default_path(), options)
        # Its "started" comes once every bot logged in or gave up; Ctrl-C meanwhile: quit, which says it at once.
        started = bots.event("started", interrupted=interrupted)
        if started is None:
            bots.command("quit")
            started = bots.event("started")
        for op, raw in started["setup"].items():
            if raw["count"] or raw["errors"]:
                swarm.setup.ops[op] = swarm_stats.Histogram.from_raw(raw)
        swarm.setup.end()
        swarm.connected = started["connected"]
        strategies, wait_s = logged_in(swarm, options)
        for strategy in strategies:
            if interrupted or bots.quit:
                break
            if strategy is not None:
                set_strategy(strategy, wait_s)
            phase = Phase(strategy or "as configured", options.watch)
            swarm.phases.append(phase)
            bots.command("phase " + phase.strategy)

            def ask_progress():
                bots.command("progress")
                native_progress(swarm, phase, bots.event("progress"))

            run_phase(options, interrupted, ask_progress)
            bots.command("end")
            phase.take_native(bots.event("phase"))
            phase.end()
            print("swarm: phase %s done" % phase.strategy, file=sys.stderr, flush=True)
        if not bots.quit:
            bots.command("progress")
            swarm.connected = bots.event("progress")["connected"]
    except native_bots.NativeBotsDied as e:
        raise SystemExit("swarm: %s" % e) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        stopped = bots.close() if bots is not None else None
    swarm.max_rss_kib = stopped["max_rss_kib"] if stopped else None
    return report(options, swarm, swarm.connected)


def native_progress(swarm, phase, event):
    """progress()'s line, from shard-bots' progress event."""
    seconds = max(1e-9, event["seconds"])
    ops = ["%s n=%d errors=%d p50 %s ms p99 %s ms" % (
        op, h["count"], h["errors"], *("%.1f" % v if v is not None else "-" for v in (h["p50_ms"], h["p99_ms"])))
        for op, h in event["ops"].items() if h["count"] or h["errors"]]
    print("swarm: %s, %.0f s: %d bots connected; %s; moves sent %.0f/s, updates %.0f/s" % (
        phase.strategy, seconds, event["connected"], "; ".join(ops) or "no calls yet",
        event["counts"]["moves_sent"] / seconds, event["counts"]["move_updates"] / seconds),
        file=sys.stderr, flush=True)


def run_phase(options, interrupted, on_progress):
    """Waits out one phase (--duration; 0: until Ctrl-C), calling on_progress every --progress seconds."""
    end = None if options.duration == 0 else time.monotonic() + options.duration
    next_progress = time.monotonic() + options.progress if options.progress else None
    while not interrupted and (end is None or time.monotonic() < end):
        time.sleep(0.1 if end is None else min(0.1, max(0.0, end - time.monotonic())))
        if next_progress is not None and time.monotonic() >= next_progress:
            next_progress += options.progress
            on_progress()


def logged_in(swarm, options):
    """Says how the logins went; the phases' strategies (None: as configured)
    and the wait after switching each one."""
    login = swarm.setup.ops.get("login")
    print("swarm: %d of %d bots connected%s" % (swarm.connected, options.bots,
                                                  "; failures: %s" % json.dumps(login.error_samples)
                                                  if login and login.errors else ""),
          file=sys.stderr, flush=True)
    return options.strategies or [None], 2 * settings_interval() + 0.5 if options.strategies else 0


def progress(swarm, phase):
    """One line on stderr: where the phase stands."""
    seconds = max(1e-9, time.monotonic() - phase.started)
    ops = []
    for op in ("ping", "chat", "trade", "move_delivery"):
        h = phase.ops.get(op)
        if h is not None:
            ops.append("%s n=%d errors=%d p50 %s ms p99 %s ms" % (
                op, h.count, h.errors, *("%.1f" % (1000 * v) if v is not None else "-"
                                         for v in (h.percentile(50), h.percentile(99)))))
    print("swarm: %s, %.0f s: %d bots connected; %s; moves sent %.0f/s, updates %.0f/s" % (
        phase.strategy, seconds, swarm.connected, "; ".join(ops) or "no calls yet",
        phase.counts["moves_sent"] / seconds, phase.counts["move_updates"] / seconds), file=sys.stderr, flush=True)


def report(options, swarm, connected):
    max_rss = swarm.max_rss_kib if swarm.max_rss_kib is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"bots": options.bots, "connected": connected, "mix": options.mix, "host": options.host,
            "port": options.port, "tls": not options.plain, "duration_s": options.duration,
            "setup": {op: h.to_json() for op, h in sorted(swarm.setup.ops.items())},
            "max_rss_kib": max_rss, "rss_kib_per_bot": round(max_rss / max(1, connected), 1),
            "phases": [p.to_json(connected) for p in swarm.phases]}


def plot_in_child(report_json, png):
    """The PNG, drawn by swarm_plot.py in a plain Python process: matplotlib
    and numpy (~40 MiB, their own threads, and module state they never free
    at exit) stay out of the bots' process."""
    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as f:
        f.write(report_json)
        f.flush()
        done = subprocess.run([PLOT_PYTHON, os.path.join(here, "swarm_plot.py"), f.name, png],
                              capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit("swarm: plotting %s with %s failed (exit %d): %s"
                         % (png, PLOT_PYTHON, done.returncode, done.stderr.strip()))


def parse_args(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description="N game-client bots as tasklets, a behaviour mix, latency "
                                     "percentiles per dispatch strategy (JSON and PNG). See tools/client/README.md.")
    parser.add_argument("--host", default="127.0.0.1", help="the proxy's client address")
    parser.add_argument("--port", type=int, default=26000, help="the proxy's client port")
    parser.add_argument("--ca", default=os.path.normpath(os.path.join(here, "..", "..", "build", "devcert", "dev.crt")),
                        help="the CA of the proxy's certificate (default: the build's devcert)")
    parser.add_argument("--plain", action="store_true", help="no TLS")
    parser.add_argument("--bots", type=int, default=10, help="how many bots (accounts PREFIX0..N-1)")
    parser.add_argument("--prefix", default="bot", help="account and character name prefix (default bot)")
    parser.add_argument("--password", default="bot-password", help="the bots' password (test accounts only)")
    parser.add_argument("--create-accounts", action="store_true",
                        help="first make the missing accounts in the database of SHARD_DB_*")
    parser.add_argument("--create-parallel", type=int, default=8, help="account hashes computed at once")
    parser.add_argument("--mix", type=parse_mix, default=parse_mix("move=1,ping=0.2,chat=0.05,trade=0.01"),
                        help="operations per bot per second (default move=1,ping=0.2,chat=0.05,trade=0.01)")
    parser.add_argument("--duration", type=float, default=30.0,
                        help="seconds per phase; 0: one phase until Ctrl-C (default 30)")
    parser.add_argument("--strategies", type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                        help="one phase per dispatch strategy, each set on every node through the live setting "
                        "dispatch_strategy (database of SHARD_DB_*), e.g. main_loop,pending_call")
    parser.add_argument("--ramp", type=float, default=None, help="seconds over which bots log in (default bots/100)")
    parser.add_argument("--sources", type=int, default=None,
                        help="connect from this many loopback addresses 127.1.x.y, round robin (a proxy takes at most "
                        "256 connections per address); default: bots/200 rounded up for a 127.* host, else 1")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per call and per connection")
    parser.add_argument("--speed", type=float, default=20.0, help="the bots' ship speed in m/s (default 20)")
    parser.add_argument("--trade-type", type=int, default=34, help="the (first) item type the bots trade (default 34)")
    parser.add_argument("--trade-types", type=int, default=1,
                        help="how many item types, from --trade-type on: each trade picks one (a market's many books)")
    parser.add_argument("--trade-price", type=int, default=500, help="around this price, hundredths of ISK")
    parser.add_argument("--trade-log", metavar="FILE",
                        help="append each trade's outcome here, one JSON object per line (for market_audit.py)")
    parser.add_argument("--watch", type=parse_watch, default=[],
                        help="NAME=PID,...: processes on this machine (the nodes) whose CPU time and memory each phase "
                        "reports")
    parser.add_argument("--progress", type=float, default=10.0,
                        help="seconds between progress lines on stderr (0: none; default 10)")
    parser.add_argument("--native", nargs="?", const="", default=None, metavar="PATH",
                        help="the bots are shard-bots (C++, the same behaviour), a child process; PATH default: "
                        "shard-bots next to the shard binary")
    parser.add_argument("--native-threads", type=int, default=1, help="shard-bots' IO threads (default 1)")
    parser.add_argument("--json", help="write the report here (default: standard output)")
    parser.add_argument("--png", help="write the plot here (python3-matplotlib)")
    options = parser.parse_args(argv)
    if options.ramp is None:
        options.ramp = options.bots / 100.0
    if options.sources is None:
        options.sources = -(-options.bots // 200) if options.host.startswith("127.") else 1
    if not 1 <= options.sources <= 250 * 250:
        parser.error("--sources must be in [1, 62500]")
    if options.bots < 1:
        parser.error("--bots must be at least 1")
    if not 1 <= options.trade_types <= 100000:
        parser.error("--trade-types must be in [1, 100000]")
    if not 1 <= options.native_threads <= 256:
        parser.error("--native-threads must be in [1, 256]")
    if options.duration == 0 and options.strategies and len(options.strategies) > 1:
        parser.error("--duration 0 runs one phase: give at most one strategy")
    return options


def main(argv=None):
    options = parse_args(sys.argv[1:] if argv is None else argv)
    game_client.load_protos()
    result = run(options)
    text = json.dumps(result, indent=1)
    if options.json:
        with open(options.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    else:
        print(text)
    if options.png:
        plot_in_child(text, options.png)
    summary = {p["strategy"]: {op: {k: h[k] for k in ("count", "errors", "p50_ms", "p99_ms", "max_ms")}
                               for op, h in p["ops"].items()} for p in result["phases"]}
    print("swarm: %d bots connected; %s" % (result["connected"], json.dumps(summary)), file=sys.stderr, flush=True)
    return 0 if result["connected"] else 1


if __name__ == "__main__":
    sys.exit(main())
