"""The systemd units of ops/systemd/: `systemd-analyze verify` finds nothing
to say about them (skipped where systemd-analyze is not installed), and the
command line each one runs is one `shard` accepts (`--print-config`: every
option a known key with a valid value).

The units name the install of docs/deploying.md (/opt/shard/build/bin/shard,
/etc/shard/); the checks run them against this build instead, the only
change made to the text."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "engine", "tests", "python"))

from support import SHARD_BINARY  # noqa: E402

UNITS = os.path.join(REPO, "ops", "systemd")
BUILD = os.path.dirname(os.path.dirname(SHARD_BINARY))
INSTALLED_BUILD = "/opt/shard/build"
TIMEOUT_S = 60


def units():
    return sorted(name for name in os.listdir(UNITS) if name.endswith(".service"))


def exec_start(text):
    """ExecStart's words, continuation lines joined."""
    line = re.search(r"^ExecStart=(.*?)(?<!\\)$", text, re.M | re.S).group(1)
    return line.replace("\\\n", " ").split()


class SystemdUnitsTest(unittest.TestCase):

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)

    def test_the_units_are_a_proxy_and_a_sol_template(self):
        self.assertEqual(units(), ["shard-proxy@.service", "shard-sol@.service"])

    @unittest.skipIf(shutil.which("systemd-analyze") is None, "systemd-analyze is not installed")
    def test_systemd_analyze_verify_finds_nothing(self):
        for name in units():
            with open(os.path.join(UNITS, name), encoding="utf-8") as f:
                text = f.read()
            self.assertIn(INSTALLED_BUILD + "/bin/shard", text)
            path = os.path.join(self.dir.name, name)
            with open(path, "w", encoding="utf-8") as f:
                f.write(text.replace(INSTALLED_BUILD, BUILD))
            with self.subTest(unit=name):
                done = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                                      timeout=TIMEOUT_S)
                self.assertEqual((done.returncode, done.stdout + done.stderr), (0, ""))

    def test_each_units_command_line_is_one_shard_accepts(self):
        credentials = os.path.join(self.dir.name, "credentials")
        os.mkdir(credentials)
        prefs = os.path.join(REPO, "server", "prefs.ini")
        for name in units():
            with open(os.path.join(UNITS, name), encoding="utf-8") as f:
                words = exec_start(f.read())
            # The specifiers as systemd expands them, for the instance `node-1`.
            words = [w.replace("/etc/shard/%i.ini", prefs).replace("%i", "node-1").replace("%d", credentials)
                     .replace(INSTALLED_BUILD, BUILD) for w in words]
            with self.subTest(unit=name):
                self.assertEqual(words[0], SHARD_BINARY)
                env = {k: v for k, v in os.environ.items() if not k.startswith("SHARD_DB_")}
                done = subprocess.run(words + ["--print-config"], capture_output=True, text=True, env=env,
                                      timeout=TIMEOUT_S)
                self.assertEqual(done.returncode, 0, done.stderr)
                self.assertIn("name = node-1\n", done.stdout)
                self.assertIn("password_file = %s/db-password\n" % credentials, done.stdout)


if __name__ == "__main__":
    unittest.main()
