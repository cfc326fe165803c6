"""`shard proxy|sol` configuration: prefs.ini, the environment and the command
line (server/src/node_prefs.cpp), seen from outside as an operator sees it:
the real binary's --help, --print-config and exit status. No database: a node
that only prints its configuration never connects."""

import os
import re
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "engine", "tests", "python"))

from support import SHARD_BINARY, run_child  # noqa: E402

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "prefs.ini")
SOL_KEYS = ("node.name", "node.log_level", "node.io_threads", "loop.fps", "loop.strategy", "loop.run_budget",
            "cluster.heartbeat_interval", "cluster.node_timeout", "db.host", "db.port", "db.socket", "db.user",
            "db.password_file", "db.database", "db.pool_size", "db.connect_timeout")


def shard(*args, env=None):
    """Runs `shard ARGS...` with no SHARD_DB_*/SHARD_IO_THREADS of ours leaking in."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SHARD_DB_") and k != "SHARD_IO_THREADS"}
    clean.update(env or {})
    return run_child([SHARD_BINARY] + list(args), env=clean)


def config(role, *args, env=None):
    """{section.key: text} that `shard ROLE ARGS... --print-config` prints."""
    result = shard(role, *args, "--print-config", env=env)
    if result.returncode != 0:
        raise AssertionError("shard %s %s: status %d: %s" % (role, " ".join(args), result.returncode, result.stderr))
    return printed(result)


def printed(result):
    """{section.key: text} from --print-config's INI output."""
    values, section = {}, None
    for line in result.stdout.splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif " = " in line or line.endswith(" ="):
            key, _, value = line.partition(" =")
            values["%s.%s" % (section, key)] = value.strip()
    return values


class PrefsTestCase(unittest.TestCase):

    def write(self, text):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        path = os.path.join(directory.name, "prefs.ini")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def assertBadConfig(self, result, *fragments):
        self.assertEqual(result.returncode, 2, result.stderr)
        for fragment in fragments:
            self.assertIn(fragment, result.stderr)
        self.assertEqual(result.stdout, "")


class ValuesTest(PrefsTestCase):

    def test_defaults_without_a_file(self):
        values = config("sol")
        self.assertEqual(values["sol.port"], "26001")
        self.assertEqual(values["loop.strategy"], "main_loop")
        self.assertEqual(values["cluster.node_timeout"], "10")
        self.assertEqual(values["db.database"], "shard")
        self.assertNotIn("proxy.port", values, "a sol prints the sol's keys only")
        self.assertEqual(config("proxy")["proxy.port"], "26000")

    def test_the_file_sets_keys_and_the_command_line_wins(self):
        path = self.write("[sol]\nport = 4000\naddress = 127.0.0.5\n[loop]\nfps = 60\n")
        values = config("sol", "--config", path, "--sol.port", "4001", "--loop.strategy=pending_call")
        self.assertEqual(values["sol.port"], "4001")          # command line over the file
        self.assertEqual(values["sol.address"], "127.0.0.5")  # the file over the default
        self.assertEqual(values["loop.fps"], "60")
        self.assertEqual(values["loop.strategy"], "pending_call")
        self.assertEqual(values["node.log_level"], "info")    # the default

    def test_the_environment_sets_db_keys_between_the_file_and_the_command_line(self):
        path = self.write("[db]\nport = 3310\nuser = from_file\ndatabase = file_db\n")
        env = {"SHARD_DB_PORT": "3320", "SHARD_DB_USER": "from_env", "SHARD_IO_THREADS": "3"}
        values = config("sol", "--config", path, "--db.user", "from_command_line", env=env)
        self.assertEqual(values["db.port"], "3320")
        self.assertEqual(values["db.user"], "from_command_line")
        self.assertEqual(values["db.database"], "file_db")
        self.assertEqual(values["node.io_threads"], "3")

    def test_one_file_serves_both_roles(self):
        path = self.write("[sol]\nport = 4000\n[proxy]\nport = 5000\n")
        self.assertEqual(config("sol", "--config", path)["sol.port"], "4000")
        self.assertEqual(config("proxy", "--config", path)["proxy.port"], "5000")

    def test_the_sample_prefs_ini_holds_the_defaults(self):
        for role in ("sol", "proxy"):
            with self.subTest(role=role):
                self.assertEqual(config(role, "--config", SAMPLE), config(role))

    def test_print_config_output_reads_back_as_the_same_values(self):
        first = shard("sol", "--sol.port", "0", "--cluster.heartbeat_interval", "0.25", "--node.name", "x",
                      "--print-config")
        self.assertEqual(config("sol", "--config", self.write(first.stdout)), printed(first))
        self.assertEqual(printed(first)["cluster.heartbeat_interval"], "0.25")


class HelpTest(PrefsTestCase):

    def test_help_documents_every_key_of_the_role_with_its_default(self):
        for role, own, other in (("sol", "sol.", "proxy."), ("proxy", "proxy.", "sol.")):
            with self.subTest(role=role):
                result = shard(role, "--help")
                self.assertEqual(result.returncode, 0, result.stderr)
                options = dict(re.findall(r"--([a-z_]+\.[a-z_]+) V \(=([^)]*)\)", result.stdout))
                for key in SOL_KEYS:
                    self.assertIn(key, options)
                self.assertTrue(any(k.startswith(own) for k in options))
                self.assertFalse(any(k.startswith(other) for k in options))
                defaults = config(role)
                for key, default in options.items():
                    self.assertEqual(default.strip('"'), defaults[key], key)

    def test_the_top_level_usage_names_the_roles(self):
        result = shard("help")
        self.assertIn("proxy [--config prefs.ini]", result.stdout)
        self.assertIn("sol [--config prefs.ini]", result.stdout)


class BadConfigTest(PrefsTestCase):

    def test_an_unknown_key_in_the_file_names_the_key_and_the_file(self):
        path = self.write("[sol]\nprot = 4000\n")
        self.assertBadConfig(shard("sol", "--config", path), path, "sol.prot")

    def test_an_unknown_option_on_the_command_line(self):
        self.assertBadConfig(shard("proxy", "--proxy.prot", "1"), "proxy.prot")

    def test_a_bad_value_names_its_key(self):
        cases = [
            (["--sol.port", "70000"], "sol.port: '70000' is out of range"),
            (["--sol.port", "12ab"], "sol.port: '12ab' is not an integer"),
            (["--loop.fps", "fast"], "loop.fps: 'fast' is not a number"),
            (["--loop.fps", "nan"], "loop.fps: 'nan' is out of range"),
            (["--cluster.node_timeout", "inf"], "cluster.node_timeout: 'inf' is out of range"),
            (["--loop.strategy", "eventually"], "loop.strategy: 'eventually' is not one of: main_loop"),
            (["--node.log_level", "loud"], "node.log_level"),
            (["--sol.address", "localhost"], "sol.address: 'localhost' is not a numeric IP address"),
            (["--sol.address", "0.0.0.0"], "sol.advertise: must be set"),
            (["--cluster.heartbeat_interval", "2", "--cluster.node_timeout", "3"], "cluster.node_timeout"),
            (["--db.pool_size", "0"], "db.pool_size"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                self.assertBadConfig(shard("sol", *args), message)

    def test_a_bad_value_in_the_file_names_its_key(self):
        self.assertBadConfig(shard("sol", "--config", self.write("[cluster]\nnode_timeout = soon\n")),
                             "cluster.node_timeout: 'soon' is not a number")

    def test_a_bad_value_from_the_environment_names_its_key(self):
        self.assertBadConfig(shard("sol", env={"SHARD_DB_PORT": "db"}), "db.port: 'db' is not an integer")

    def test_a_missing_file(self):
        self.assertBadConfig(shard("sol", "--config", "/nonexistent/prefs.ini"), "/nonexistent/prefs.ini: cannot read")

    def test_a_key_given_twice_in_the_file(self):
        self.assertBadConfig(shard("sol", "--config", self.write("[sol]\nport = 1\nport = 2\n")), "sol.port")

    def test_a_positional_argument_is_refused(self):
        self.assertBadConfig(shard("sol", "script.py"))



class StartTest(PrefsTestCase):

    def test_an_unreachable_database_stops_the_node_with_status_1_and_the_reason(self):
        # Port 1 on loopback: nothing listens there, the refusal is immediate.
        result = shard("sol", "--db.port", "1", "--sol.port", "0")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertRegex(result.stderr, r"ERROR \S+ shard.node: cannot start the sol node: \[2002\]")


if __name__ == "__main__":
    unittest.main()
