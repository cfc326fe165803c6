"""A login storm on a real `shard proxy` (TLS client port, the private
MariaDB): a hundred clients send their LoginRequest at once, each a scrypt
check (~50 ms of a core, 16 MiB). The proxy runs proxy.password_checks of
them at a time and queues the rest (hash_gate.py), so under a short
node_timeout, watched by a sol that marks late nodes gone, it stays
registered; every login completes or is refused with a reason; its worker
threads do not grow with the storm; and the scrypt memory does not stay
resident after it (the fixed mmap threshold of node_command.cpp).

Before: a storm made one worker thread per check, every check ran at once
(the node's heartbeat starved on a 2-core machine: marked gone and stopped),
and glibc's arenas kept each check's 16 MiB, ~2 MiB per connected client."""

import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "engine", "tests", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "db", "tests", "python"))

import _engine  # noqa: E402
import _net  # noqa: E402
import accounts  # noqa: E402
import db  # noqa: E402
import session_pb2  # noqa: E402
import uthread  # noqa: E402
from cluster_support import CA, LOGIN, WAIT_S, Cluster  # noqa: E402
from support import StacklessTestCase, run_in_tasklet  # noqa: E402

STORM = 100
PASSWORD = "storm-pw"
# What one idle logged-in client may add to the proxy's resident memory:
# ~120 KiB measured (docs/benchmarks.md, the swarm), before ~2 MiB; the
# bound is generous so a busy machine cannot make it fail.
MAX_RSS_PER_CLIENT_KIB = 512
BUSY = r"^the server is busy with other logins; retry in \d+ s$"

cluster = Cluster("shard_test_login_storm", {
    "cluster": {"heartbeat_interval": 0.25, "node_timeout": 3},
    "proxy": {"logins_per_address": 100000, "login_timeout": 30, "password_checks": 1},
})


def setUpModule():
    cluster.set_up()
    # One hash for every account (the salt is the same; these are test
    # accounts): making 100 hashes would cost the test 5 s of scrypt.
    stored = accounts.hash_password(PASSWORD)
    for i in range(STORM):
        db.execute("INSERT INTO accounts (name, password_hash) VALUES (?, ?)", "storm%d" % i, stored)


def tearDownModule():
    cluster.tear_down()


def status(pid):
    """/proc/PID/status as {field: first number} (VmRSS in KiB, Threads)."""
    with open("/proc/%d/status" % pid, encoding="ascii") as f:
        return {k: int(v.split()[0]) for k, _, v in (line.partition(":") for line in f)
                if v.split() and v.split()[0].isdigit()}


def login_all(port, names):
    """Connects every client first (TLS), then sends every LoginRequest at
    once: (connections, LoginReplies) in the order of `names`."""
    connections = uthread.parallel(
        [lambda: _net.connect("127.0.0.1", port, timeout=WAIT_S, tls=True, tls_ca=CA) for _ in names],
        timeout=WAIT_S)
    for connection, name in zip(connections, names):
        request = session_pb2.LoginRequest(user_name=name, credential=PASSWORD.encode(), client_version="storm")
        connection.sendpacket(request.SerializeToString(), kind=LOGIN)
    replies = uthread.parallel(
        [lambda c=c: session_pb2.LoginReply.FromString(c.recvpacket(timeout=2 * WAIT_S)) for c in connections],
        timeout=3 * WAIT_S)
    return connections, replies


def in_tasklet(func, *args):
    how, value = run_in_tasklet(func, *args)
    if how == "raised":
        raise value
    return value


class LoginStorm(StacklessTestCase):
    """One storm (setUpClass); each test looks at one of its outcomes."""

    deadline_s = 240

    @classmethod
    def setUpClass(cls):
        cluster.reset_directory()
        cls.watcher = cluster.start("sol", "sol-watch")  # marks the proxy gone if its heartbeat is late
        cls.watcher.registered()
        cls.proxy = cluster.start("proxy", "proxy-storm")
        cls.proxy_id = cls.proxy.registered()["id"]
        port = cls.proxy.registered()["port"]
        # A first login makes what every login needs once (imports, the worker pool).
        warm, (reply,) = in_tasklet(login_all, port, ["storm0"])
        assert reply.ok, reply.reason
        warm[0].close()
        cls.proxy.wait_log(r"session \d+ .* ended")
        cls.before = status(cls.proxy.proc.pid)
        cls.connections, cls.replies = in_tasklet(login_all, port, ["storm%d" % i for i in range(STORM)])
        cls.after = status(cls.proxy.proc.pid)
        print("\nstorm of %d logins: proxy VmRSS %d -> %d KiB, threads %d -> %d" % (
            STORM, cls.before["VmRSS"], cls.after["VmRSS"], cls.before["Threads"], cls.after["Threads"]),
            file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        for connection in cls.connections:
            connection.close()
        cls.proxy.stop()
        cls.watcher.stop()

    def test_every_login_completes(self):
        self.assertEqual([reply.reason for reply in self.replies if not reply.ok], [])
        self.assertEqual(len({reply.session_id for reply in self.replies}), STORM)

    def test_the_proxy_stays_registered_under_a_short_node_timeout(self):
        self.assertIsNone(self.proxy.proc.poll(), self.proxy.log())
        self.assertIsNone(self.proxy.row()["gone_at"], self.proxy.log())
        self.assertNotRegex(self.watcher.log(), r"proxy node %d \(proxy-storm\) is gone" % self.proxy_id)

    def test_the_checks_do_not_add_a_worker_thread_each(self):
        self.assertLessEqual(self.after["Threads"] - self.before["Threads"], 4,
                             "threads %d -> %d" % (self.before["Threads"], self.after["Threads"]))

    # What this measures is glibc's malloc (the fixed mmap threshold that gives
    # each check's 16 MiB back): a sanitized build allocates through ASan's own
    # allocator, whose quarantine keeps freed blocks on purpose.
    @unittest.skipIf(_engine.SANITIZED, "resident memory of ASan's allocator, not glibc's")
    def test_resident_memory_per_logged_in_client_stays_small(self):
        per_client = (self.after["VmRSS"] - self.before["VmRSS"]) / STORM
        self.assertLess(per_client, MAX_RSS_PER_CLIENT_KIB,
                        "VmRSS %d -> %d KiB" % (self.before["VmRSS"], self.after["VmRSS"]))


class FullQueue(StacklessTestCase):

    deadline_s = 120

    def test_logins_past_the_queue_are_refused_with_a_retry_time_and_the_rest_complete(self):
        cluster.reset_directory()
        proxy = cluster.start("proxy", "proxy-queue", "--proxy.login_queue", "2")
        self.addCleanup(proxy.stop)
        port = proxy.registered()["port"]
        connections, replies = in_tasklet(login_all, port, ["storm%d" % i for i in range(16)])
        for connection in connections:
            self.addCleanup(connection.close)
        refused = [reply.reason for reply in replies if not reply.ok]
        self.assertGreater(len(refused), 0)
        for reason in refused:
            self.assertRegex(reason, BUSY)
        self.assertGreaterEqual(sum(reply.ok for reply in replies), 3)  # the one checked and the two queued
        proxy.wait_log(r"login of 'storm\d+' refused: busy: \d+ password checks waiting \(at most 2\)")


if __name__ == "__main__":
    unittest.main()
