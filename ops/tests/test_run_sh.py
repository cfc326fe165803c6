"""`ops/run.sh` end to end (without its install and build: --no-setup): its
own MariaDB in a temporary directory, the demo loaded, one proxy and two sols
as separate processes, two bots (tools/client/swarm.py); a demo
account logs in through the proxy's TLS client port; then Ctrl-C (SIGINT to
the script's process group, as a terminal sends it) stops the bots, every
node and the database, and the script exits 0. Every wait is bounded."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "engine", "tests", "python"))
sys.path.insert(0, os.path.join(REPO, "db", "tests", "python"))
sys.path.insert(0, os.path.join(REPO, "server", "tests", "python"))

import _net  # noqa: E402
import session_pb2  # noqa: E402
from cluster_support import CA, LOGIN, WAIT_S, poll  # noqa: E402
from support import SHARD_BINARY, StacklessTestCase  # noqa: E402

BUILD = os.path.dirname(os.path.dirname(SHARD_BINARY))
PASSWORD = "demo-test-pw"
START_S = 120  # the database's first start, the migrations and three nodes on a loaded 2-core machine


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gone(pid):
    """Not running: no such process, or a zombie its new parent has not reaped yet."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


class RunShTest(StacklessTestCase):
    deadline_s = 300

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.out_path = os.path.join(self.dir.name, "run.out")
        self.port = free_port()
        with open(self.out_path, "wb") as out:
            # A session of its own: SIGINT to its group is what Ctrl-C sends.
            self.proc = subprocess.Popen(
                ["bash", os.path.join(REPO, "ops", "run.sh"), "--no-setup", "--build", BUILD,
                 "--dir", os.path.join(self.dir.name, "run"), "--port", str(self.port), "--sol-port", "0",
                 "--password", PASSWORD, "--bots", "2"],
                cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                env={k: v for k, v in os.environ.items() if not k.startswith("SHARD_DB_")})
        self.addCleanup(self.kill_leftovers)

    def out(self):
        with open(self.out_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def kill_leftovers(self):
        """After a failure: nothing of this run outlives the test."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(WAIT_S)
        subprocess.run(["bash", os.path.join(REPO, "ops", "mariadb.sh"), "stop",
                        os.path.join(self.dir.name, "run", "mariadb")], capture_output=True, timeout=60)

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("ops/run.sh exited with %s:\n%s" % (self.proc.returncode, self.out()))
            return "\nready: " in self.out()
        poll(ready, "ops/run.sh ready", START_S)

    def login(self, name, password):
        connection = _net.connect("127.0.0.1", self.port, timeout=WAIT_S, tls=True, tls_ca=CA)
        try:
            request = session_pb2.LoginRequest(user_name=name, credential=password.encode(), client_version="test")
            connection.sendpacket(request.SerializeToString(), kind=LOGIN)
            return session_pb2.LoginReply.FromString(connection.recvpacket(timeout=WAIT_S))
        finally:
            connection.close()

    def test_the_demo_shard_serves_a_demo_login_and_ctrl_c_stops_everything(self):
        self.wait_ready()
        out = self.out()
        self.assertIn("demo accounts: demo1, demo2, demo3, password: %s" % PASSWORD, out)
        self.assertIn("tools/client/terminal.py --host 127.0.0.1 --port %d --ca %s/devcert/dev.crt"
                      % (self.port, BUILD), out)
        nodes = {name: int(pid) for name, pid in re.findall(r"run: started (\S+) \(pid (\d+)", out)}
        self.assertEqual(sorted(nodes), ["proxy-1", "sol-1", "sol-2"])
        bots = [int(pid) for pid in re.findall(r"run: started 2 bots \(pid (\d+)", out)]
        self.assertEqual(len(bots), 1, out)
        mariadb = int(re.search(r"mariadb: started \(pid (\d+)", out).group(1))

        reply = self.login("demo1", PASSWORD)
        self.assertTrue(reply.ok, reply.reason)
        self.assertEqual(reply.attributes["user_name"].string_value, "demo1")
        self.assertEqual(self.login("demo2", "wrong").reason, "wrong user name or password")

        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            status = self.proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.fail("suspected deadlock: ops/run.sh did not stop within %g s:\n%s" % (WAIT_S, self.out()))
        out = self.out()
        self.assertEqual(status, 0, out)
        for name in nodes:
            self.assertIn("run: %s stopped\n" % name, out)
        self.assertIn("mariadb: stopped", out)
        poll(lambda: all(gone(pid) for pid in list(nodes.values()) + bots + [mariadb]), "every process of the run gone")
        for name in ("sol-1", "sol-2", "proxy-1"):
            with open(os.path.join(self.dir.name, "run", "logs", name + ".log"), encoding="utf-8") as f:
                self.assertIn("stopped cleanly", f.read(), name)

    def test_a_node_that_cannot_start_fails_the_run_and_stops_the_rest(self):
        # The client port taken: the proxy exits 1, run.sh stops the sols and the database.
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", self.port))
            taken.listen()
            try:
                status = self.proc.wait(START_S)
            except subprocess.TimeoutExpired:
                self.fail("suspected deadlock: ops/run.sh did not give up:\n%s" % self.out())
        out = self.out()
        self.assertEqual(status, 1, out)
        self.assertIn("run: proxy-1 stopped while starting", out)
        self.assertIn("mariadb: stopped", out)
        pids = [int(pid) for pid in re.findall(r"run: started \S+ \(pid (\d+)", out)]
        poll(lambda: all(gone(pid) for pid in pids), "every node of the run gone")


if __name__ == "__main__":
    unittest.main()
