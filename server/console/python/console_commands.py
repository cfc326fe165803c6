"""What the console shows and does on this node: one command executor behind
its transports (the JSON API, the WebSocket push, the CLI through the API).

Each command takes plain values and returns JSON-able ones; bad input raises
CommandError (a ValueError) with the reason, and the node is unaffected.
Settings changed here (fps, dispatch_strategy, run_budget) go through the
live settings' own validators and apply callbacks (node_settings.py): the
same checks as a row of the settings table."""

import collections
import contextlib
import gc
import io
import logging
import sys
import threading
import time
import traceback

import _engine
import _net
import db
import gameloop
import live_settings
import node_settings
import stackless
import uthread

log = logging.getLogger("shard.console")

CHANGEABLE = ("fps", "dispatch_strategy", "run_budget")
MAX_PROFILE_S = 60.0
PROFILE_INTERVAL_S = 0.005
MAX_EXEC_S = 30.0
MAX_CODE_CHARS = 16 * 1024
MAX_OUTPUT_CHARS = 64 * 1024
MAX_STACK_FRAMES = 30


class CommandError(ValueError):
    """Bad input to a command; the message says why."""


def _registry(fps, dispatch_strategy, run_budget):
    """The live settings of this node: the database watcher's registry when
    it has them, else a registry of its own with the same validators."""
    if "fps" in live_settings.registry.settings:
        return live_settings.registry
    return node_settings.register_all(fps=fps, dispatch_strategy=dispatch_strategy, run_budget=run_budget,
                                      registry=live_settings.Registry())


class LogRing(logging.Handler):
    """The last log lines of the node, for the page and `shard console logs`."""

    def __init__(self, keep=500):
        super().__init__()
        self.lines = collections.deque(maxlen=keep)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record):
        try:
            self.lines.append({"at": record.created, "level": record.levelname, "line": self.format(record)})
        except Exception:  # a logging handler never raises into the caller
            self.handleError(record)


def _number(value, name, low, high):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CommandError("%s must be a number, not %r" % (name, value)) from None
    if not low <= number <= high:
        raise CommandError("%s must be in [%g, %g], not %g" % (name, low, high, number))
    return number


class Commands:

    def __init__(self, node_name, role, run_budget=0.5, server_stats=None):
        self.node_name, self.role = node_name, role
        self.registry = _registry(gameloop.fps(), gameloop.dispatch_strategy(), run_budget)
        self.server_stats = server_stats or (lambda: {})
        self.logs = LogRing()
        self.exec_namespace = {"__name__": "__console__"}
        self.own = set()  # the console's tasklets: not killable from it

    # ---- looking ----

    def stats(self):
        frame = gameloop.stats()
        settings = {name: self.registry.get(name) for name in CHANGEABLE}
        return {
            "node": self.node_name, "role": self.role, "at": time.time(),
            "strategy": gameloop.dispatch_strategy(), "fps_target": gameloop.fps(),
            "run_budget": settings["run_budget"], "settings": settings,
            "frame": frame, "dispatch": gameloop.dispatch_stats(), "io": _engine.io_stats(),
            "workers": _engine.worker_count(), "runnable": stackless.getruncount(),
            "net": _net._counts(), "db": _db_stats(), "console": self.server_stats(),
        }

    def settings(self):
        return [entry for entry in self.registry.describe() if entry["name"] in CHANGEABLE]

    def get_setting(self, name):
        self._changeable(name)
        return {"name": name, "value": self.registry.get(name)}

    def tasklets(self):
        out = []
        for t in gc.get_objects():
            if isinstance(t, stackless.tasklet) and t.alive:
                out.append(self._describe(t))
        out.sort(key=lambda d: d["id"])
        return out

    def _describe(self, t):
        frame = t.frame
        stack = traceback.format_stack(frame, limit=MAX_STACK_FRAMES) if frame is not None else []
        if t.is_current:
            state = "running"
        elif t.blocked:
            state = "blocked on a channel"
        elif t.scheduled:
            state = "runnable"
        else:
            state = "waiting (sleep, IO or request)"
        where = "%s:%d in %s" % (frame.f_code.co_filename, frame.f_lineno, frame.f_code.co_name) if frame else ""
        return {"id": id(t), "name": t.name or "", "state": state, "where": where, "main": t.is_main,
                "thread_id": t.thread_id, "stack": "".join(stack)}

    def recent_logs(self, count=100):
        count = int(_number(count, "count", 1, self.logs.lines.maxlen))
        return list(self.logs.lines)[-count:]

    # ---- changing (audited by the caller) ----

    def _changeable(self, name):
        if name not in CHANGEABLE:
            raise CommandError("%r is not a setting the console changes (%s)" % (name, ", ".join(CHANGEABLE)))
        return self.registry.settings[name]

    def check_setting(self, name, value):
        """The value set_setting() would apply (CommandError when it would refuse it)."""
        setting = self._changeable(name)
        try:
            return setting.parse(str(value))
        except (ValueError, TypeError) as e:
            raise CommandError("%s: refused %r (%s)" % (name, value, e)) from None

    def set_setting(self, name, value):
        """Validated and applied as a settings-table row would be; returns old and new."""
        setting = self._changeable(name)
        try:
            new = setting.parse(str(value))
            if setting.apply is not None:
                setting.apply(new)
        except (ValueError, TypeError) as e:
            raise CommandError("%s: refused %r (%s)" % (name, value, e)) from None
        old, setting.value = setting.value, new
        for callback in setting.subscribers:
            try:
                callback(new)
            except Exception:
                log.exception("settings subscriber %r failed", callback)
        # In force from here: the frame now running (its next phase) uses it.
        return {"name": name, "old": old, "value": new, "frame": gameloop.stats()["frame"]}

    def kill(self, tasklet_id):
        try:
            wanted = int(tasklet_id)
        except (TypeError, ValueError):
            raise CommandError("a tasklet id is an integer, not %r" % (tasklet_id,)) from None
        for t in gc.get_objects():
            if isinstance(t, stackless.tasklet) and id(t) == wanted and t.alive:
                if t.is_main or t.is_current or t in self.own:
                    raise CommandError("tasklet %d is the main tasklet or the console's own: not killed" % wanted)
                described = self._describe(t)
                t.kill(pending=True)  # it dies in its turn; this handler does not switch to it
                return {"killed": wanted, "name": described["name"], "where": described["where"]}
        raise CommandError("no live tasklet %d" % wanted)

    def profile(self, seconds, limit=50):
        """Samples the main thread's Python stack for `seconds` from a worker
        thread (the loop never stops; whichever tasklet runs is sampled);
        rows of function, self and total samples and percentages."""
        seconds = _number(seconds, "seconds", 0.1, MAX_PROFILE_S)
        limit = int(_number(limit, "limit", 1, 1000))
        main_id = threading.main_thread().ident
        samples, own, total = gameloop.call_in_thread(_sample, main_id, seconds, PROFILE_INTERVAL_S,
                                                      timeout=seconds + 10)
        rows = [{"function": key, "self": own.get(key, 0), "total": count,
                 "self_pct": 100.0 * own.get(key, 0) / samples if samples else 0.0,
                 "total_pct": 100.0 * count / samples if samples else 0.0} for key, count in total.items()]
        rows.sort(key=lambda r: (-r["self"], -r["total"]))
        return {"seconds": seconds, "samples": samples, "rows": rows[:limit]}

    def execute(self, code):
        """Runs `code` in a tasklet of its own (exec, or an expression's repr
        as the interactive prompt shows it); its output and traceback."""
        if not isinstance(code, str) or not code.strip():
            raise CommandError("code must be a non-empty string")
        if len(code) > MAX_CODE_CHARS:
            raise CommandError("code is longer than %d characters" % MAX_CODE_CHARS)
        try:
            compiled = compile(code, "<console>", "single" if "\n" not in code.strip() else "exec")
        except SyntaxError:
            return {"output": traceback.format_exc(limit=0), "ok": False}
        output = io.StringIO()

        def run():
            # Output of other tasklets printing while this input runs is caught too.
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                try:
                    exec(compiled, self.exec_namespace)
                    return True
                except Exception:
                    traceback.print_exc()
                    return False
        try:
            ok, = uthread.parallel([run], timeout=MAX_EXEC_S)
        except TimeoutError:
            output.write("\n(stopped after %g s)\n" % MAX_EXEC_S)
            ok = False
        text = output.getvalue()
        if len(text) > MAX_OUTPUT_CHARS:
            text = text[:MAX_OUTPUT_CHARS] + "\n... (output cut at %d characters)\n" % MAX_OUTPUT_CHARS
        return {"output": text, "ok": ok}


def _db_stats():
    """The database pool's counters (waiting: its queue depth), or None without a database."""
    try:
        return db.stats()
    except (db.Error, RuntimeError):
        return None


def _sample(thread_id, seconds, interval):
    """On a worker thread: the stacks of thread `thread_id` every `interval`."""
    own, total, samples = collections.Counter(), collections.Counter(), 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        time.sleep(interval)
        frame = sys._current_frames().get(thread_id)
        if frame is None:
            continue
        samples += 1
        seen = set()
        top = True
        while frame is not None:
            code = frame.f_code
            key = "%s (%s:%d)" % (code.co_name, code.co_filename, code.co_firstlineno)
            if top:
                own[key] += 1
                top = False
            if key not in seen:
                seen.add(key)
                total[key] += 1
            frame = frame.f_back
        del frame
    return samples, dict(own), dict(total)
