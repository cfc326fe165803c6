"""The child process of `swarm.py --native`: shard-bots (tools/bots), the
swarm's bots in C++. This side starts it with the swarm's
options, writes its commands (phase NAME, end, progress, quit) and reads its
events, one JSON object per line on its stdout (its logs go to our stderr).
The child is always reaped: `close` says quit, waits, then kills it."""

import json
import os
import select
import subprocess
import time

STOP_WAIT_S = 30.0    # the child's bots finish their calls (its own 20 s grace) and close; then it is killed
MAX_LINE = 64 << 20   # a phase line holds up to 200,000 ping samples


class NativeBotsDied(RuntimeError):
    """The child exited, or wrote something that is no event, before the event awaited."""


def default_path():
    """build/bin/shard-bots, next to the `shard` binary running this."""
    return os.path.join(os.path.dirname(os.readlink("/proc/self/exe")), "shard-bots")


def command_line(path, options):
    """shard-bots with the swarm's options."""
    mix = ",".join("%s=%r" % (op, options.mix.get(op, 0.0)) for op in ("move", "ping", "chat", "trade"))
    args = [path, "--host", options.host, "--port", str(options.port), "--prefix", options.prefix,
            "--bots", str(options.bots), "--password", options.password, "--ramp", repr(options.ramp),
            "--sources", str(options.sources), "--mix", mix, "--speed", repr(options.speed),
            "--timeout", repr(options.timeout), "--threads", str(options.native_threads),
            "--trade-type", str(options.trade_type), "--trade-types", str(options.trade_types),
            "--trade-price", str(options.trade_price)]
    if options.trade_log:
        args += ["--trade-log", options.trade_log]
    return args + (["--plain"] if options.plain else ["--ca", options.ca])


class NativeBots:
    def __init__(self, path, options):
        self.path = path
        if not os.access(path, os.X_OK):
            raise NativeBotsDied("the native bots %s are not there (build the shard-bots target)" % path)
        self.proc = subprocess.Popen(command_line(path, options), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.buffer = b""
        self.quit = False

    def command(self, line):
        self.quit = self.quit or line == "quit"
        try:
            self.proc.stdin.write(line.encode("utf-8") + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise self._died("before the command %r" % line) from None

    def event(self, name, until=None, interrupted=None):
        """The next event `name` (a dict); None when `until` (monotonic) passed
        or `interrupted` (a list) got an entry first. Other events are skipped."""
        fd = self.proc.stdout.fileno()
        while True:
            while b"\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\n", 1)
                try:
                    event = json.loads(line)
                except ValueError:
                    raise self._died("after a line that is no JSON: %r" % line[:200]) from None
                if isinstance(event, dict) and event.get("event") == name:
                    return event
            if interrupted or (until is not None and time.monotonic() >= until):
                return None
            wait = 0.1 if until is None else max(0.0, min(0.1, until - time.monotonic()))
            if not select.select([fd], [], [], wait)[0]:
                continue
            data = os.read(fd, 1 << 20)
            if not data:
                raise self._died("before its %r event" % name)
            self.buffer += data
            if len(self.buffer) > MAX_LINE:
                raise self._died("after a line over %d bytes" % MAX_LINE)

    def close(self):
        """quit, its stopped event (None if it did not come), and the child reaped."""
        stopped = None
        try:
            if not self.quit:
                self.command("quit")
            stopped = self.event("stopped", until=time.monotonic() + STOP_WAIT_S)
        except NativeBotsDied:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.wait(STOP_WAIT_S if stopped is not None else 0.1)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()
        return stopped

    def _died(self, when):
        try:
            status = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            status = self.proc.wait()
        return NativeBotsDied("the native bots (%s) exited with status %s %s" % (self.path, status, when))
