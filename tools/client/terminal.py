"""The shard's interactive terminal client (run with /usr/bin/python3.11).

    /usr/bin/python3.11 tools/client/terminal.py --port 26000 --ca build/devcert/dev.crt
    > login alice
    > chars
    > select alice
    > ping

One command per line, from the keyboard or from a pipe (a script: every
command's answer is printed before the next line is read, and `wait N` shows
what arrives for N seconds). Notifications (chat lines, trades) and the
movement updates of nearby ships are printed as they arrive. `help` lists the
commands; `--help` the options. Exit status: 0 after `quit` or the end of the
input, 1 when the last command failed.

It speaks the protocol through game_client.py (the classes protoc generates,
the standard library, tools/wire.py): one connection, no threads; while it
waits for a line it reads the connection with select().
"""

import argparse
import getpass
import json
import os
import select
import shlex
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import game_client  # noqa: E402

IDLE_S = 1.0  # the longest select() between two reads of the connection (heartbeats)


def isk(cents):
    """Hundredths of ISK as text."""
    return "%s%d.%02d ISK" % ("-" if cents < 0 else "", abs(cents) // 100, abs(cents) % 100)


def parse_isk(text):
    """'12.5' -> 1250 (hundredths of ISK), exactly: no float rounding."""
    whole, _, frac = text.strip().partition(".")
    if not whole.lstrip("-").isdigit() or not (frac == "" or (frac.isdigit() and len(frac) <= 2)):
        raise ValueError("a price is ISK with at most two decimals, e.g. 12.50 (got %r)" % text)
    cents = abs(int(whole)) * 100 + int(frac.ljust(2, "0") or 0)
    return -cents if whole.startswith("-") else cents


def vector(words, name):
    if len(words) != 3:
        raise ValueError("%s needs three numbers (x y z)" % name)
    return tuple(float(w) for w in words)


class UsageError(ValueError):
    pass


class Terminal:
    def __init__(self, args, out=sys.stdout):
        self.args, self.out = args, out
        self.client = None
        self.characters = []
        self.show_moves = True
        self.commands = {}
        for name in dir(self):
            if name.startswith("do_"):
                self.commands[name[3:]] = getattr(self, name)
        self.commands.update({"exit": self.do_quit, "part": self.do_leavechannel, "sleep": self.do_wait})

    def say(self, text):
        print(text, file=self.out, flush=True)

    # --- the connection ---------------------------------------------------------

    def connected(self):
        if self.client is None or self.client.closed:
            raise UsageError("not logged in (login NAME [PASSWORD])")
        return self.client

    def connect(self):
        a = self.args
        self.client = game_client.connect(a.host, a.port, ca_file=None if a.plain else a.ca, timeout=a.timeout,
                                          on_notification=self.show_notification, on_move=self.show_move)
        self.say("connected to %s:%d (%s)" % (a.host, a.port,
                                             "TLS" if self.client.negotiated.tls else "plain, no TLS"))

    def incoming(self):
        """Reads and prints what the server sent, without waiting."""
        if self.client is not None and not self.client.closed:
            try:
                self.client.poll(0)
            except game_client.ClientError as e:
                self.say("disconnected: %s" % e)

    def show_notification(self, n):
        if n.service == "chat" and n.event == "message" and len(n.args) >= 4:
            channel, _, sender, text = n.args[:4]
            self.say("[chat %s] %s: %s" % (channel, sender, text))
        elif n.service == "market" and n.event == "trade" and len(n.args) >= 4:
            order, type_id, quantity, price = n.args[:4]
            self.say("[market trade] order %s: %s of type %s at %s" % (order, quantity, type_id,
                                                                       isk(price) if isinstance(price, int) else price))
        else:
            self.say("[%s %s] %s" % (n.service, n.event, json.dumps(n.args, default=repr)))

    def show_move(self, m):
        if self.show_moves:
            self.say("[move] ship %d at (%.1f, %.1f, %.1f) v (%.1f, %.1f, %.1f) seq %d"
                     % ((m.entity_id,) + m.position + m.velocity + (m.sequence,)))

    def call(self, service, method, *args, **kwargs):
        return self.connected().call(service, method, *args, **kwargs)

    # --- commands -------------------------------------------------------------------

    def do_help(self, words):
        """help: this list"""
        for name in sorted(self.commands):
            doc = self.commands[name].__doc__
            if doc and name == doc.split()[0].rstrip(":"):
                self.say("  " + doc.strip())

    def do_quit(self, words):
        """quit: close the connection and leave (also: exit, end of input)"""
        raise EOFError

    def do_login(self, words):
        """login NAME [PASSWORD]: connect and log in (asks for the password when not given)"""
        if len(words) not in (1, 2):
            raise UsageError("usage: login NAME [PASSWORD]")
        password = words[1] if len(words) == 2 else getpass.getpass("password for %s: " % words[0])
        if self.client is not None:
            self.client.close()
        self.connect()
        reply = self.client.login(words[0], password)
        self.say("logged in as %s: session %d, user %d" % (words[0], reply["session_id"], reply["user_id"]))

    def do_chars(self, words):
        """chars: your characters"""
        self.characters = self.call("characters", "list")
        if not self.characters:
            self.say("no characters yet (create NAME)")
        for c in self.characters:
            self.say("  %(character_id)d  %(name)s  system %(solar_system_id)s  ship %(ship_id)s" % c)

    def do_create(self, words):
        """create NAME: a new character (a ship in a starter system, a starting balance); NAME may have spaces"""
        if not words:
            raise UsageError("usage: create NAME")
        c = self.call("characters", "create", " ".join(words))
        self.say("created character %(character_id)d %(name)s in system %(solar_system_id)s, ship %(ship_id)s" % c)

    def do_select(self, words):
        """select ID|NAME: play that character (its ship enters its system's space)"""
        if not words:
            raise UsageError("usage: select ID|NAME")
        character_id = self.character_id(" ".join(words))
        self.show_attributes(self.call("characters", "select", character_id), "playing")

    def character_id(self, word):
        if word.isdigit():
            return int(word)
        if not any(c["name"] == word for c in self.characters):
            self.characters = self.call("characters", "list")
        for c in self.characters:
            if c["name"] == word:
                return c["character_id"]
        raise UsageError("no character named %r on this account (chars lists them)" % word)

    def show_attributes(self, a, what):
        self.connected().attributes = a
        position = a.get("ship_position")
        where = "" if not position else " at (%.1f, %.1f, %.1f)" % tuple(position)
        self.say("%s character %s: system %s, ship %s%s" % (what, a.get("character_id"), a.get("solar_system_id"),
                                                           a.get("ship_id"), where))

    def do_info(self, words):
        """info: the solar system you are in, its gates and pilots"""
        i = self.call("solarsystem", "info")
        self.say("system %s (%s), security %.1f, %d pilots, %s" % (
            i["name"], i["solar_system_id"], i["security"], i["pilots"], "in space" if i["in_space"] else "docked"))
        for g in i["gates"]:
            self.say("  gate %d -> %s (%s) at (%.0f, %.0f, %.0f)" % ((g["gate_id"], g["destination_name"],
                                                                     g["destination_system_id"]) + tuple(g["position"])))

    def do_enter(self, words):
        """enter: undock: your ship enters the system's space"""
        self.show_attributes(self.call("solarsystem", "enter"), "in space:")

    def do_leave(self, words):
        """leave: dock: your ship leaves space"""
        self.show_attributes(self.call("solarsystem", "leave"), "docked:")

    def do_jump(self, words):
        """jump GATE_ID: through a gate of this system (info lists them)"""
        if len(words) != 1:
            raise UsageError("usage: jump GATE_ID")
        self.show_attributes(self.call("solarsystem", "jump", int(words[0])), "jumped:")

    def do_move(self, words):
        """move X Y Z [VX VY VZ]: your ship to that position (m) with that velocity (m/s); a leap past the speed limit closes the connection"""
        if len(words) not in (3, 6):
            raise UsageError("usage: move X Y Z [VX VY VZ]")
        client = self.connected()
        ship = client.attributes.get("ship_id")
        if ship is None:
            raise UsageError("no ship: select a character first")
        position = vector(words[:3], "position")
        velocity = vector(words[3:], "velocity") if len(words) == 6 else (0.0, 0.0, 0.0)
        sequence = client.move(ship, position, velocity)
        self.say("moved ship %d to (%.1f, %.1f, %.1f) seq %d" % ((ship,) + position + (sequence,)))

    def do_moves(self, words):
        """moves on|off: print nearby ships' movement updates or not"""
        if words not in (["on"], ["off"]):
            raise UsageError("usage: moves on|off")
        self.show_moves = words[0] == "on"

    def do_ping(self, words):
        """ping [TEXT]: round trip to your sol"""
        start = time.perf_counter()
        r = self.call("ping", "ping", " ".join(words) if words else None)
        self.say("pong from %s (node %s): %.2f ms, echo %r" % (r["node"], r["node_id"],
                                                              (time.perf_counter() - start) * 1000, r["echo"]))

    def do_chat(self, words):
        """chat TEXT: say TEXT in your system's local channel"""
        if not words:
            raise UsageError("usage: chat TEXT")
        self.call("chat", "send", "local", " ".join(words))

    def do_say(self, words):
        """say CHANNEL TEXT: say TEXT in a channel you joined"""
        if len(words) < 2:
            raise UsageError("usage: say CHANNEL TEXT")
        self.call("chat", "send", words[0], " ".join(words[1:]))

    def do_join(self, words):
        """join CHANNEL: join a named chat channel"""
        if len(words) != 1:
            raise UsageError("usage: join CHANNEL")
        self.call("chat", "join", words[0])
        self.say("joined %s" % words[0])

    def do_leavechannel(self, words):
        """leavechannel CHANNEL: leave a chat channel (also: part)"""
        if len(words) != 1:
            raise UsageError("usage: leavechannel CHANNEL")
        self.call("chat", "leave", words[0])
        self.say("left %s" % words[0])

    def do_channels(self, words):
        """channels: the chat channels you are in"""
        self.say("channels: %s" % ", ".join(self.call("chat", "channels")))

    def do_members(self, words):
        """members CHANNEL: who is in a channel"""
        if len(words) != 1:
            raise UsageError("usage: members CHANNEL")
        self.say("%s: %s" % (words[0], ", ".join(self.call("chat", "members", words[0]))))

    def do_buy(self, words):
        """buy TYPE QUANTITY PRICE: a buy order (price in ISK, e.g. 12.50)"""
        self.place("buy", words)

    def do_sell(self, words):
        """sell TYPE QUANTITY PRICE: a sell order"""
        self.place("sell", words)

    def place(self, side, words):
        if len(words) != 3:
            raise UsageError("usage: %s TYPE QUANTITY PRICE" % side)
        r = self.call("market", "place", side, int(words[0]), int(words[1]), parse_isk(words[2]), uuid.uuid4().hex)
        trades = ", ".join("%d @ %s" % (t["quantity"], isk(t["price"])) for t in r["trades"]) or "none"
        if r["order_id"] is not None:
            what = "order %d rests" % r["order_id"]
        else:  # filled at once, or more left than one request may take (the market's bound): not placed
            what = "no order rests" + (" (the rest was not placed: place it again)" if r["remaining"] else "")
        self.say("%s: filled %d, remaining %d; trades: %s" % (what, r["filled"], r["remaining"], trades))

    def do_cancel(self, words):
        """cancel ORDER_ID: cancel what is left of an order"""
        if len(words) != 1:
            raise UsageError("usage: cancel ORDER_ID")
        r = self.call("market", "cancel", int(words[0]), uuid.uuid4().hex)
        self.say("order %s: cancelled %d" % (r["order_id"], r["cancelled"]))

    def do_book(self, words):
        """book TYPE: the region's order book for a type"""
        if len(words) != 1:
            raise UsageError("usage: book TYPE")
        book = self.call("market", "book", int(words[0]))
        for side in ("sell", "buy"):
            self.say("%s:" % side)
            for price, quantity in book[side]:
                self.say("  %d @ %s" % (quantity, isk(price)))

    def do_orders(self, words):
        """orders: your open orders"""
        orders = self.call("market", "my_orders")
        if not orders:
            self.say("no open orders")
        for o in orders:
            self.say("  " + json.dumps(o, sort_keys=True))

    def do_balance(self, words):
        """balance: your wallet"""
        self.say("balance: %s" % isk(self.call("market", "balance")))

    def do_history(self, words):
        """history [N]: your last N wallet transactions"""
        for t in self.call("market", "history", limit=int(words[0]) if words else 50):
            self.say("  " + json.dumps(t, sort_keys=True))

    def do_call(self, words):
        """call SERVICE METHOD [JSON ...]: any call, each argument a JSON value"""
        if len(words) < 2:
            raise UsageError("usage: call SERVICE METHOD [JSON ...]")
        args = [json.loads(w) for w in words[2:]]
        self.say(json.dumps(self.call(words[0], words[1], *args), sort_keys=True, default=repr))

    def do_wait(self, words):
        """wait SECONDS: show what arrives for that long (for scripts; also: sleep)"""
        if len(words) != 1:
            raise UsageError("usage: wait SECONDS")
        end = time.monotonic() + float(words[0])
        while self.client is not None and not self.client.closed and time.monotonic() < end:
            try:
                self.client.poll(min(IDLE_S, max(0.0, end - time.monotonic())))
            except game_client.ClientError as e:
                self.say("disconnected: %s" % e)
        time.sleep(max(0.0, end - time.monotonic()))

    # --- the loop -----------------------------------------------------------------

    def run_line(self, line):
        """Runs one command; False when it failed."""
        try:
            words = shlex.split(line, comments=True)
        except ValueError as e:
            self.say("error: %s" % e)
            return False
        if not words:
            return True
        command = self.commands.get(words[0].lower())
        if command is None:
            self.say("error: unknown command %r (help lists them)" % words[0])
            return False
        try:
            command(words[1:])
            return True
        except game_client.RpcError as e:
            self.say("error: %s" % e)
        except game_client.LoginFailed as e:
            self.say("error: %s" % e)
        except game_client.ClientError as e:
            self.say("disconnected: %s" % e)
        except (TimeoutError, OSError) as e:
            self.say("error: %s" % (e or type(e).__name__))
        except (UsageError, ValueError, TypeError, OverflowError) as e:
            self.say("error: %s" % e)
        return False

    def loop(self, stdin_fd=0):
        interactive = os.isatty(stdin_fd)
        buffered, ok = b"", True
        while True:
            if interactive:
                print("> ", end="", file=self.out, flush=True)
            while b"\n" not in buffered:
                self.incoming()
                fds = [stdin_fd]
                if self.client is not None and not self.client.closed:
                    if self.client.pending():
                        continue
                    fds.append(self.client.fileno())
                ready, _, _ = select.select(fds, [], [], IDLE_S)
                if stdin_fd in ready:
                    chunk = os.read(stdin_fd, 4096)
                    if not chunk:
                        if buffered.strip():
                            ok = self.run_line(buffered.decode("utf-8", "replace"))
                        return ok
                    buffered += chunk
            line, buffered = buffered.split(b"\n", 1)
            try:
                ok = self.run_line(line.decode("utf-8", "replace"))
            except EOFError:
                return True
            self.incoming()


def main(argv=None):
    here = os.path.dirname(os.path.abspath(__file__))
    default_ca = os.path.join(here, "..", "..", "build", "devcert", "dev.crt")
    parser = argparse.ArgumentParser(description="The shard's terminal game client: commands from the keyboard "
                                     "or a pipe, one per line ('help' lists them).")
    parser.add_argument("--host", default="127.0.0.1", help="the proxy's client address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=26000, help="the proxy's client port (default 26000)")
    parser.add_argument("--ca", default=os.path.normpath(default_ca),
                        help="PEM file of the CA that signed the proxy's certificate (default: the build's devcert)")
    parser.add_argument("--plain", action="store_true", help="no TLS (a proxy with proxy.tls = off or optional)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds each call may take (default 10)")
    parser.add_argument("--user", help="log in as this account at start")
    parser.add_argument("--password-file", help="the password for --user, first line of this file")
    parser.add_argument("--protos", help="folder of the protoc-generated *_pb2.py (default: build/netproto/python)")
    args = parser.parse_args(argv)
    game_client.load_protos(args.protos)
    terminal = Terminal(args)
    ok = True
    if args.user:
        if args.password_file:
            with open(args.password_file, encoding="utf-8") as f:
                password = f.readline().rstrip("\n")
        else:
            password = getpass.getpass("password for %s: " % args.user)
        ok = terminal.run_line("login %s %s" % (shlex.quote(args.user), shlex.quote(password)))
    try:
        ok = terminal.loop() and ok
    except KeyboardInterrupt:
        pass
    finally:
        if terminal.client is not None:
            terminal.client.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
