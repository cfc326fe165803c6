"""`shard console` against a running node: each command, human and --json
output, refusals with exit status 1 and the reason, bad usage 2."""

import json
import os
import subprocess
import tempfile
import unittest

from console_support import ACCOUNTS, Node

import support  # noqa: E402
from support import SHARD_BINARY  # noqa: E402


def setUpModule():
    global node, password_dir
    support.setUpModule()
    node = Node(metrics=False)
    password_dir = tempfile.TemporaryDirectory()
    for name, (_, password) in ACCOUNTS.items():
        with open(os.path.join(password_dir.name, name), "w", encoding="utf-8") as f:
            f.write(password + "\n")


def tearDownModule():
    node.stop()
    password_dir.cleanup()
    support.tearDownModule()


def console(*args, user="adm", node_address=None):
    command = [SHARD_BINARY, "console", "--node", node_address or "127.0.0.1:%d" % node.port, "--user", user,
               "--password-file", os.path.join(password_dir.name, user)] + list(args)
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


class Cli(unittest.TestCase):

    def test_stats_print_the_frame_and_the_strategies(self):
        result = console("stats")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("strategy main_loop", result.stdout)
        self.assertIn("pending_call", result.stdout)
        data = json.loads(console("--json", "stats").stdout)
        self.assertIn("frame_ms", data["frame"])

    def test_strategy_get_and_set(self):
        self.assertEqual(console("strategy").stdout.strip(), "main_loop")
        result = console("strategy", "on_block")
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "main_loop -> on_block"))
        self.assertEqual(json.loads(console("--json", "strategy").stdout), "on_block")
        console("strategy", "main_loop")

    def test_a_bad_value_exits_1_with_the_reason_and_changes_nothing(self):
        result = console("fps", "0")
        self.assertEqual(result.returncode, 1)
        self.assertIn("HTTP 400: fps: refused '0'", result.stderr)
        self.assertEqual(console("fps").stdout.strip(), "30.0")

    def test_fps_and_budget(self):
        self.assertEqual(console("fps", "40").stdout.strip(), "30.0 -> 40.0")
        self.assertEqual(console("budget", "0.4").stdout.strip(), "0.5 -> 0.4")
        console("fps", "30")
        console("budget", "0.5")

    def test_tasklets_and_kill(self):
        listing = console("--json", "tasklets")
        victim = next(t for t in json.loads(listing.stdout) if t["name"] == "test victim")
        self.assertIn("test victim", console("tasklets").stdout)
        result = console("kill", str(victim["id"]))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("killed tasklet %d test victim" % victim["id"], result.stdout)

    def test_profile_prints_a_table(self):
        result = console("profile", "0.5")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("samples in 0.5 s", result.stdout)
        self.assertIn("self%", result.stdout)

    def test_exec_prints_output_and_exits_1_on_an_exception(self):
        self.assertEqual(console("exec", "print(6 * 7)").stdout, "42\n")
        failed = console("exec", "raise KeyError('k')")
        self.assertEqual(failed.returncode, 1)
        self.assertIn("KeyError: 'k'", failed.stdout)
        refused = console("exec", "1", user="ops")
        self.assertEqual(refused.returncode, 1)
        self.assertIn("HTTP 403", refused.stderr)

    def test_logs_and_audit(self):
        console("fps", "30")
        self.assertIn("shard.audit", console("logs", "20").stdout)
        self.assertIn("adm from 127.0.0.1", console("audit").stdout)

    def test_a_wrong_password_and_an_unreachable_node_exit_1(self):
        wrong = console("stats", user="view")
        self.assertEqual(wrong.returncode, 0, wrong.stderr)
        with open(os.path.join(password_dir.name, "bad"), "w", encoding="utf-8") as f:
            f.write("nope\n")
        result = console("stats", user="bad")
        self.assertEqual(result.returncode, 1)
        self.assertIn("HTTP 401: wrong name or password", result.stderr)
        unreachable = console("stats", node_address="127.0.0.1:1")
        self.assertEqual(unreachable.returncode, 1)
        self.assertIn("cannot reach the console at 127.0.0.1:1", unreachable.stderr)

    def test_bad_usage_exits_2(self):
        self.assertEqual(console("kill").returncode, 2)
        self.assertEqual(console("stats", node_address="nowhere").returncode, 2)

    def test_passwd_makes_a_password_file_line(self):
        result = subprocess.run([SHARD_BINARY, "console", "passwd", "eve", "operator"], input="secret\n",
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr)
        name, role, stored = result.stdout.strip().split(":", 2)
        self.assertEqual((name, role), ("eve", "operator"))
        self.assertTrue(stored.startswith("scrypt$"))


if __name__ == "__main__":
    unittest.main()
