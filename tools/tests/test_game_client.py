"""The game client of tools/client against real nodes: a `shard proxy` (TLS
with the development certificate) and two `shard sol`s on 127.0.0.1, on the
private MariaDB (ctest's `mariadb` fixture, cluster_support.py).

- game_client.py inside this interpreter (tasklet sockets): login, a refused
  password, errors with their kind, ping, a move seen by another client;
- terminal.py under /usr/bin/python3.11, driven through its stdin over TLS:
  login, characters, select, ping, its move seen by a client here and that
  client's move printed by the terminal;
- swarm.py (`shard python`): 5 bots for a few seconds, two dispatch
  strategies, a JSON report and a PNG; the same with --native (shard-bots,
  the C++ bots of tools/bots, as its child), and native bots whose password
  is wrong reporting their refused logins.

Every wait is bounded."""

import json
import os
import select
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "server", "tests", "python"))
sys.path.insert(0, os.path.join(ROOT, "db", "tests", "python"))
sys.path.insert(0, os.path.join(ROOT, "tools", "client"))

import cluster_support  # noqa: E402
import db  # noqa: E402
import game_client  # noqa: E402
import market_audit  # noqa: E402
from cluster_support import CA, WAIT_S  # noqa: E402
from support import SHARD_BINARY, StacklessTestCase, SuspectedDeadlock  # noqa: E402

PYTHON = "/usr/bin/python3.11"
TERMINAL = os.path.join(ROOT, "tools", "client", "terminal.py")
SWARM = os.path.join(ROOT, "tools", "client", "swarm.py")
SYSTEM, OTHER_SYSTEM = 30000001, 30000002
REGION = 10000001  # both systems: one market
TRITANIUM = 34
SWARM_TYPE = 900  # the swarm's orders stay out of the terminal's market
GATE, OTHER_GATE = 50000001, 50000002  # at the origins of SYSTEM and OTHER_SYSTEM, each other's destination
USERS = ("alice", "bob", "carol")
WRONG_PASSWORD_BOTS = 2  # accounts wrongpw0, wrongpw1 (password wrongpwN-pw), which the swarm gets wrong

# The swarm's five logins, the tests' and the terminal's come from one address.
# 200 fps: under the default dispatch strategy (main_loop) each database
# statement's completion waits for the next frame, so at 30 fps a market
# request (a dozen statements, the book serializing them) took ~0.4 s and a
# swarm bot's trade ~2.3 s: waits, not checks.
CLUSTER = cluster_support.Cluster("shard_test_game_client", {"proxy": {"logins_per_address": 1000},
                                                             "loop": {"fps": 200}})
# The nodes read the live settings this often: a swarm switching the dispatch
# strategy waits two of these (swarm.py's set_strategy) instead of two of the
# default 1 s, four times per module.
SETTINGS_INTERVAL_S = 0.25
_ships = {}


def setUpModule():
    CLUSTER.set_up()
    db.execute("INSERT INTO settings (name, value) VALUES ('settings_interval_s', ?)", str(SETTINGS_INTERVAL_S))
    for system in (SYSTEM, OTHER_SYSTEM):
        db.execute("INSERT INTO solar_systems (id, name, security, x, y, z) VALUES (?, ?, 0.5, 0, 0, 0)"
                   " ON DUPLICATE KEY UPDATE id = id", system, "S-%d" % system)
    db.execute("INSERT INTO regions (id, name) VALUES (?, 'Test Region')", REGION)
    db.execute("UPDATE solar_systems SET region_id = ? WHERE id IN (?, ?)", REGION, SYSTEM, OTHER_SYSTEM)
    db.execute("INSERT INTO gates (id, system_id, destination_gate_id, x, y, z) VALUES (?, ?, ?, 0, 0, 0),"
               " (?, ?, ?, 0, 0, 0)", GATE, SYSTEM, OTHER_GATE, OTHER_GATE, OTHER_SYSTEM, GATE)
    for i, name in enumerate(USERS):
        _ships[name] = cluster_support.add_pilot(name, SYSTEM, 100.0 * i)
    for i in range(WRONG_PASSWORD_BOTS):
        cluster_support.add_pilot("wrongpw%d" % i, SYSTEM, 5000.0 + i)


def tearDownModule():
    CLUSTER.tear_down()


class Child:
    """A child process whose output (stdout and stderr, on one pipe) is read line by line."""

    def __init__(self, test, command, **options):
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     **options)
        test.addCleanup(self.close)
        self.data = b""

    def write(self, line):
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def expect(self, marker):
        """The line that holds `marker` (read within WAIT_S); the output before it is skipped."""
        end = time.monotonic() + WAIT_S
        while marker not in self.data or b"\n" not in self.data[self.data.index(marker):]:
            left = end - time.monotonic()
            if left <= 0 or marker != b"error:" and b"error:" in self.data or self.proc.poll() is not None and not select.select([self.proc.stdout], [], [], 0)[0]:
                raise SuspectedDeadlock("suspected deadlock: the terminal never wrote %r; it wrote %r"
                                        % (marker, self.data))
            if select.select([self.proc.stdout], [], [], min(left, 0.5))[0]:
                self.data += os.read(self.proc.stdout.fileno(), 4096)
        at = self.data.index(marker)
        start, cut = self.data.rfind(b"\n", 0, at) + 1, self.data.index(b"\n", at) + 1
        out, self.data = self.data[start:cut], self.data[cut:]
        return out.decode()

    def rest(self):
        """What the child wrote and was not read yet (after it exited)."""
        return (self.data + self.proc.stdout.read()).decode(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(WAIT_S)
        self.proc.stdin.close()
        self.proc.stdout.close()


class Terminal(Child):
    """terminal.py under /usr/bin/python3.11, its stdin and stdout on pipes."""

    def __init__(self, test, *args):
        super().__init__(test, [PYTHON, TERMINAL] + list(args))

    def command(self, line, marker):
        self.write(line)
        return self.expect(marker)


class GameClientTest(StacklessTestCase):
    deadline_s = 240

    @classmethod
    def setUpClass(cls):
        CLUSTER.reset_directory()
        sols = [CLUSTER.start("sol", "sol-a"), CLUSTER.start("sol", "sol-b")]
        cls.sol_ids = ids = [sol.registered()["id"] for sol in sols]
        cls.proxy = CLUSTER.start("proxy", "proxy-c")
        cls.port = cls.proxy.registered()["port"]
        for node_id in ids:
            cls.proxy.wait_log(r"ping over the link to sol %d" % node_id)

    @classmethod
    def tearDownClass(cls):
        for node in CLUSTER.nodes:
            node.stop()

    def connect(self, ca_file=CA, **options):
        client = game_client.connect("127.0.0.1", self.port, ca_file=ca_file, timeout=WAIT_S, **options)
        self.addCleanup(client.close)
        return client

    def play(self, name):
        """A client logged in as `name`, its character selected."""
        client = self.connect()
        client.login(name, name + "-pw")
        attributes = client.call("characters", "select", _ships[name][0])
        self.assertEqual(attributes["ship_id"], _ships[name][1])
        return client

    def test_a_client_logs_in_over_tls_and_gets_errors_with_their_kind(self):
        client = self.connect()
        self.assertTrue(client.negotiated.tls)
        reply = client.login("alice", "alice-pw")
        self.assertTrue(reply["ok"])
        self.assertGreater(reply["session_id"], 0)
        with self.assertRaises(game_client.RpcError) as caught:
            client.call("ping", "ping")
        self.assertEqual(caught.exception.kind, "UNAVAILABLE")
        self.assertIn("select a character first", caught.exception.message)
        client.call("characters", "select", _ships["alice"][0])
        answer = client.call("ping", "ping", {"hello": [1, 2.5, None, b"x"]})
        self.assertEqual(answer["echo"], {"hello": [1, 2.5, None, b"x"]})
        big = "compressible " * 1000  # past the handshake's threshold: zlib both ways
        self.assertEqual(client.negotiated.compression, 2)
        self.assertEqual(client.call("ping", "ping", big)["echo"], big)
        with self.assertRaises(game_client.RpcError) as caught:
            client.call("ping", "no_such_method")
        self.assertEqual(caught.exception.kind, "NO_SUCH_METHOD")

    def test_a_certificate_from_another_ca_is_refused(self):
        other_ca = os.path.join(os.path.dirname(os.path.dirname(CA)), "devcert-other", "dev.crt")
        with self.assertRaisesRegex(game_client.TlsError, "certificate verify failed"):
            self.connect(ca_file=other_ca)

    def test_a_wrong_password_is_refused_with_the_servers_reason(self):
        client = self.connect()
        with self.assertRaises(game_client.LoginFailed) as caught:
            client.login("alice", "not-her-password")
        self.assertEqual(caught.exception.reason, "wrong user name or password")
        with self.assertRaises(game_client.Disconnected):
            client.call("ping", "ping")

    def test_a_move_reaches_a_client_nearby(self):
        alice, bob = self.play("alice"), self.play("bob")
        ship = _ships["alice"][1]
        alice.move(ship, (1.0, 0.0, 0.0), (1.0, 0.0, 0.0))
        seen = bob.wait_move(ship, timeout=WAIT_S)
        self.assertEqual((seen.position, seen.velocity, seen.sequence), ((1.0, 0.0, 0.0), (1.0, 0.0, 0.0), 1))

    def test_the_terminal_is_driven_through_its_stdin(self):
        bob = self.play("bob")
        terminal = Terminal(self, "--port", str(self.port), "--ca", CA)
        alice_ship, bob_ship = _ships["alice"][1], _ships["bob"][1]
        terminal.write("login alice alice-pw")
        self.assertEqual(terminal.expect(b"connected to"), "connected to 127.0.0.1:%d (TLS)\n" % self.port)
        terminal.expect(b"logged in as alice")
        self.assertIn("  %d  alice  system %d  ship %d" % (_ships["alice"][0], SYSTEM, alice_ship),
                      terminal.command("chars", b"ship %d" % alice_ship))
        self.assertIn("ship %d" % alice_ship, terminal.command("select alice", b"playing character"))
        self.assertIn("echo 'hi'", terminal.command("ping hi", b"pong from"))
        self.assertIn("error: NO_SUCH_METHOD", terminal.command("call ping nope", b"error:"))
        terminal.command("move 2 0 0 1 0 0", b"moved ship")
        seen = bob.wait_move(alice_ship, timeout=WAIT_S)
        self.assertEqual(seen.position, (2.0, 0.0, 0.0))
        bob.move(bob_ship, (101.0, 0.0, 0.0), (1.0, 0.0, 0.0))  # printed as it arrives, between commands
        self.assertEqual(terminal.expect(b"[move] ship %d" % bob_ship),
                         "[move] ship %d at (101.0, 0.0, 0.0) v (1.0, 0.0, 0.0) seq 1\n" % bob_ship)
        terminal.write("quit")
        self.assertEqual(terminal.proc.wait(WAIT_S), 0)

    def test_the_terminal_creates_a_character_chats_trades_docks_and_jumps_to_the_other_sol(self):
        bob = self.play("bob")
        terminal = Terminal(self, "--port", str(self.port), "--ca", CA)
        terminal.command("login carol carol-pw", b"logged in as carol")
        created = terminal.command("create Carol Pilot", b"created character")
        self.assertRegex(created, r"created character \d+ Carol Pilot in system %d, ship \d+" % SYSTEM)
        self.assertIn("system %d" % SYSTEM, terminal.command("select 'Carol Pilot'", b"playing character"))
        self.assertRegex(terminal.command("info", b"security"),
                         r"system S-%d \(%d\), security 0\.5, \d+ pilots, in space" % (SYSTEM, SYSTEM))
        self.assertIn("gate %d -> S-%d (%d) at (0, 0, 0)" % (GATE, OTHER_SYSTEM, OTHER_SYSTEM),
                      terminal.expect(b"gate %d" % GATE))

        bob.call("chat", "send", "local", "hello carol")  # printed as it arrives
        self.assertEqual(terminal.expect(b"[chat local] bob"), "[chat local] bob: hello carol\n")
        terminal.write("chat hi all")
        note = bob.wait_notification("chat", "message", timeout=WAIT_S)
        if note.args[2] == "bob":  # the sender gets its own line too
            note = bob.wait_notification("chat", "message", timeout=WAIT_S)
        self.assertEqual([note.args[0], note.args[2], note.args[3]], ["local", "Carol Pilot", "hi all"])
        terminal.command("join ops-room", b"joined ops-room")
        terminal.write("say ops-room in the room")
        self.assertEqual(terminal.expect(b"[chat ops-room]"), "[chat ops-room] Carol Pilot: in the room\n")
        self.assertEqual(terminal.command("channels", b"channels:"), "channels: local, ops-room\n")
        self.assertIn("docked:", terminal.command("leave", b"system"))
        self.assertIn("error: APPLICATION ValueError: the ship is docked", terminal.command("chat nobody hears",
                                                                                           b"error:"))
        self.assertIn("in space:", terminal.command("enter", b"system"))

        # A trade: bob's sell order rests, the terminal's buy takes it at bob's price; bob is told.
        placed = bob.call("market", "place", "sell", TRITANIUM, 5, 400, "bob-sell-1")
        self.assertEqual((placed["filled"], placed["remaining"]), (0, 5))
        self.assertIn("5 @ 4.00 ISK", terminal.command("book %d" % TRITANIUM, b"@ 4.00 ISK"))
        self.assertEqual(terminal.command("buy %d 5 4.50" % TRITANIUM, b"order"),
                         "no order rests: filled 5, remaining 0; trades: 5 @ 4.00 ISK\n")
        self.assertRegex(terminal.command("sell %d 2 7.25" % TRITANIUM, b"order"),
                         r"^order \d+ rests: filled 0, remaining 2; trades: none\n$")
        self.assertRegex(terminal.command("orders", b"quantity"), r'"price": 725, "quantity": 2, .*"side": "sell"')
        trade = bob.wait_notification("market", "trade", timeout=WAIT_S)
        self.assertEqual(trade.args, [placed["order_id"], TRITANIUM, 5, 400])
        self.assertEqual(terminal.command("balance", b"balance:"), "balance: 999980.00 ISK\n")
        # The rollback case: an order the wallet cannot pay changes nothing.
        self.assertIn("error: APPLICATION InsufficientFunds: not enough ISK",
                      terminal.command("buy %d 1 99999999.99" % (TRITANIUM + 1), b"error:"))
        self.assertEqual(terminal.command("balance", b"balance:"), "balance: 999980.00 ISK\n")

        before = terminal.command("ping", b"pong from")
        jumped = terminal.command("jump %d" % GATE, b"jumped:")
        self.assertIn("system %d" % OTHER_SYSTEM, jumped)
        after = terminal.command("ping", b"pong from")
        self.assertNotEqual(before.split("(node")[0], after.split("(node")[0])  # the other sol answers
        terminal.write("quit")
        self.assertEqual(terminal.proc.wait(WAIT_S), 0)

    def swarm_env(self):
        env = dict(os.environ, **cluster_support.client_env())
        env["SHARD_DB_DATABASE"] = CLUSTER.database
        return env

    def test_a_swarm_without_a_duration_runs_until_ctrl_c(self):
        report = os.path.join(CLUSTER.dir.name, "until-ctrl-c.json")
        swarm = Child(self, [SHARD_BINARY, "python", SWARM, "--port", str(self.port), "--ca", CA, "--bots", "2",
                             "--prefix", "idlebot", "--create-accounts", "--duration", "0", "--mix", "ping=5",
                             "--progress", "0.2", "--json", report], env=self.swarm_env())
        self.assertEqual(swarm.expect(b"bots connected"), "swarm: 2 of 2 bots connected\n")
        while "ping n=0 " in swarm.expect(b"ping n="):  # progress lines until pings were answered
            pass
        swarm.proc.send_signal(signal.SIGINT)
        self.assertEqual(swarm.proc.wait(WAIT_S), 0, swarm.rest())
        self.assert_one_phase_of_answered_pings(report)

    def assert_one_phase_of_answered_pings(self, report):
        with open(report, encoding="utf-8") as f:
            phases = json.load(f)["phases"]
        self.assertEqual([p["strategy"] for p in phases], ["as configured"])
        self.assertGreater(phases[0]["ops"]["ping"]["count"], 0)
        self.assertEqual(phases[0]["ops"]["ping"]["errors"], 0)

    def test_a_swarm_of_five_bots_reports_json_and_a_png(self):
        out = CLUSTER.dir.name
        env = self.swarm_env()
        done = subprocess.run([SHARD_BINARY, "python", SWARM, "--port", str(self.port), "--ca", CA, "--bots", "5",
                               "--prefix", "swarmbot", "--create-accounts", "--duration", "2",
                               "--mix", "move=2,ping=2,chat=1,trade=1", "--trade-type", str(SWARM_TYPE), "--strategies", "main_loop,pending_call",
                               "--json", os.path.join(out, "swarm.json"), "--png", os.path.join(out, "swarm.png")],
                              env=env, capture_output=True, text=True, timeout=180)
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(os.path.join(out, "swarm.json"), encoding="utf-8") as f:
            report = json.load(f)
        self.assertEqual((report["bots"], report["connected"]), (5, 5), done.stderr + CLUSTER.post_mortem())
        self.assertEqual([p["strategy"] for p in report["phases"]], ["main_loop", "pending_call"])
        for phase in report["phases"]:
            for op in ("ping", "chat", "trade"):
                h = phase["ops"][op]
                self.assertGreater(h["count"], 0, phase)
                self.assertEqual(h["errors"], 0, phase)
                self.assertLessEqual(h["p50_ms"], h["p99_ms"])
                self.assertLessEqual(h["p99_ms"], h["max_ms"])
            self.assertGreater(phase["moves_sent"], 0)
            self.assertGreater(phase["chat_deliveries"], 0)
        with open(os.path.join(out, "swarm.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        # The strategy the run found is back in force.
        self.assertEqual(db.query("SELECT value FROM settings WHERE name = 'dispatch_strategy'"), [])

    def test_a_native_swarm_of_five_bots_moves_pings_chats_trades_and_reports_as_the_python_one(self):
        out = CLUSTER.dir.name
        path, trade_log = os.path.join(out, "native.json"), os.path.join(out, "native-trades.jsonl")
        books = market_audit.snapshot()
        done = subprocess.run([SHARD_BINARY, "python", SWARM, "--native", "--port", str(self.port), "--ca", CA,
                               "--bots", "5", "--prefix", "nativebot", "--create-accounts", "--ramp", "0.5",
                               "--duration", "2", "--mix", "move=2,ping=2,chat=1,trade=2", "--trade-type", str(SWARM_TYPE),
                               "--trade-log", trade_log, "--strategies", "main_loop,pending_call",
                               "--progress", "1", "--json", path, "--png", os.path.join(out, "native.png")],
                              env=self.swarm_env(), capture_output=True, text=True, timeout=180)
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
        self.assertEqual((report["bots"], report["connected"]), (5, 5), done.stderr + CLUSTER.post_mortem())
        self.assertEqual(report["setup"]["login"]["count"], 5)
        self.assertGreater(report["max_rss_kib"], 0)  # the child's
        self.assertEqual([p["strategy"] for p in report["phases"]], ["main_loop", "pending_call"])
        for phase in report["phases"]:
            ping = phase["ops"]["ping"]
            self.assertGreater(ping["count"], 0, phase)
            self.assertEqual(ping["errors"], 0, phase)
            self.assertIsNotNone(ping["p50_ms"])
            self.assertLessEqual(ping["p50_ms"], ping["p99_ms"])
            self.assertLessEqual(ping["p99_ms"], ping["max_ms"])
            self.assertEqual(len(phase["ping_series"]), ping["count"])
            self.assertGreater(phase["moves_sent"], 0)
            self.assertGreater(phase["move_updates"], 0)  # the five ships are in sight of each other
            self.assertGreater(phase["ops"]["move_delivery"]["count"], 0, phase)
            self.assertNotIn("connection", phase["ops"])  # no bot lost its connection
            self.assertGreater(phase["swarm_cpu_s"], 0)
            for op in ("chat", "trade"):
                self.assertGreater(phase["ops"][op]["count"], 0, phase)
                self.assertEqual(phase["ops"][op]["errors"], 0, phase)
            self.assertGreater(phase["chat_deliveries"], 0)  # the five are in one system: each hears the others
        self.assertRegex(done.stderr, r"swarm: main_loop, \d+ s: 5 bots connected; ping n=\d+ errors=0 p50 ")
        # Every trade logged and answered (bots trade between phases too), each answer stored as given, and the
        # books balanced.
        with open(trade_log, encoding="utf-8") as f:
            trades = [json.loads(line) for line in f]
        self.assertGreaterEqual(len(trades), sum(p["ops"]["trade"]["count"] for p in report["phases"]))
        # Quit lets each bot's call in flight finish (a trade with its sends): every trade is answered.
        self.assertEqual({t["outcome"] for t in trades}, {"answered"})
        audit = market_audit.check(books, trades)
        self.assertEqual(audit.problems, [])
        self.assertEqual(audit.counts["answered"], len(trades))
        with open(os.path.join(out, "native.png"), "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertEqual(db.query("SELECT value FROM settings WHERE name = 'dispatch_strategy'"), [])

    def test_native_bots_with_a_wrong_password_report_their_refused_logins(self):
        path = os.path.join(CLUSTER.dir.name, "wrong-password.json")
        started = time.monotonic()
        done = subprocess.run([SHARD_BINARY, "python", SWARM, "--native", "--port", str(self.port), "--ca", CA,
                               "--bots", str(WRONG_PASSWORD_BOTS), "--prefix", "wrongpw", "--password", "not-it",
                               "--ramp", "0", "--duration", "0.5", "--mix", "ping=1", "--timeout", "20",
                               "--json", path], env=self.swarm_env(), capture_output=True, text=True, timeout=120)
        self.assertEqual(done.returncode, 1, done.stderr)  # nobody connected
        self.assertLess(time.monotonic() - started, 60)  # refused, not timed out
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
        self.assertEqual(report["connected"], 0)
        login = report["setup"]["login"]
        self.assertEqual((login["count"], login["errors"]), (0, WRONG_PASSWORD_BOTS), login)
        for reason in login["error_samples"]:
            self.assertRegex(reason, r"^LoginFailed: login refused: ")
        self.assertIn("swarm: 0 of %d bots connected; failures: " % WRONG_PASSWORD_BOTS, done.stderr)

    def test_a_native_swarm_without_a_duration_runs_until_ctrl_c(self):
        report = os.path.join(CLUSTER.dir.name, "native-until-ctrl-c.json")
        swarm = Child(self, [SHARD_BINARY, "python", SWARM, "--native", "--port", str(self.port), "--ca", CA,
                             "--bots", "2", "--prefix", "idlenative", "--create-accounts", "--duration", "0",
                             "--mix", "ping=5", "--progress", "0.2", "--json", report], env=self.swarm_env(),
                      start_new_session=True)
        self.assertEqual(swarm.expect(b"bots connected"), "swarm: 2 of 2 bots connected\n")
        while "ping n=" not in swarm.expect(b"bots connected; "):  # progress lines until pings were answered
            pass
        # Ctrl-C in a terminal signals the whole process group: shard-bots too, which must outlive it.
        os.killpg(swarm.proc.pid, signal.SIGINT)
        self.assertEqual(swarm.proc.wait(WAIT_S), 0, swarm.rest())
        self.assert_one_phase_of_answered_pings(report)

    def test_a_native_child_that_dies_is_a_clear_error(self):
        done = subprocess.run([SHARD_BINARY, "python", SWARM, "--native", "/bin/false", "--port", str(self.port),
                               "--ca", CA, "--bots", "1", "--duration", "1", "--mix", "ping=1"],
                              env=self.swarm_env(), capture_output=True, text=True, timeout=60)
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("swarm: the native bots (/bin/false) exited with status 1 before its 'started' event",
                      done.stderr)

    def test_a_swarm_retries_the_logins_a_busy_proxy_refused(self):
        # One password check at a time and two waiting: of a dozen bots
        # logging in together, most are refused as busy at first.
        busy = CLUSTER.start("proxy", "proxy-busy", "--proxy.password_checks", "1", "--proxy.login_queue", "2")
        self.addCleanup(busy.stop)
        port = busy.registered()["port"]
        for node_id in self.sol_ids:
            busy.wait_log(r"ping over the link to sol %d" % node_id)
        path = os.path.join(CLUSTER.dir.name, "busy.json")
        done = subprocess.run([SHARD_BINARY, "python", SWARM, "--port", str(port), "--ca", CA, "--bots", "12",
                               "--prefix", "busybot", "--create-accounts", "--ramp", "0", "--duration", "0.5",
                               "--mix", "ping=0", "--progress", "0", "--json", path],
                              env=self.swarm_env(), capture_output=True, text=True, timeout=180)
        self.assertEqual(done.returncode, 0, done.stderr)
        with open(path, encoding="utf-8") as f:
            report = json.load(f)
        self.assertEqual(report["connected"], 12, done.stderr + busy.log())
        retries = report["setup"].get("login_retry", {}).get("error_samples", {})
        self.assertGreater(len(retries), 0, report["setup"])
        for reason in retries:
            self.assertRegex(reason, r"^LoginFailed: login refused: the server is busy with other logins; "
                                     r"retry in \d+ s$")
        busy.wait_log(r"login of 'busybot\d+' refused: busy: 2 password checks waiting \(at most 2\)")


if __name__ == "__main__":
    unittest.main()
