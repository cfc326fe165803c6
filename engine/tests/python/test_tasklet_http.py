"""Standard network modules in tasklets, unchanged, against real servers: many
urllib fetches at once take about one server delay, not their sum; over TLS
too (ssl over tasklet sockets); http.server and smtplib served by tasklets;
a separate stock python3.11 server process as the other end.
"""

import os
import smtplib
import ssl
import time
import unittest
import urllib.error
import urllib.request

import stackless
import uthread
from support import StacklessTestCase
from support import setUpModule as support_setup, tearDownModule as support_teardown
import tasklet_servers

DELAY_S = 0.2
FETCHES = 50
# The fetches one after the other would take FETCHES * DELAY_S = 10 s.
CONCURRENT_BOUND_S = 4.0

_certificate = {}


def setUpModule():
    support_setup()
    _certificate["dir"] = tasklet_servers.temporary_directory()
    _certificate["files"] = tasklet_servers.make_certificate(_certificate["dir"].name)


def tearDownModule():
    _certificate.pop("dir").cleanup()
    support_teardown()


def fetch_all(url, count, **kwargs):
    """urllib.request.urlopen(url + "&i=N") in `count` tasklets at once: (bodies, seconds)."""
    def fetch(i):
        with urllib.request.urlopen(f"{url}&i={i}", timeout=20, **kwargs) as response:
            return response.read()

    start = time.monotonic()
    bodies = uthread.parallel([lambda i=i: fetch(i) for i in range(count)], timeout=30)
    return bodies, time.monotonic() - start


class ConcurrentFetchTest(StacklessTestCase):
    deadline_s = 60.0

    def check_bodies(self, bodies):
        self.assertEqual(bodies, [f"/slow?delay={DELAY_S}&i={i}".encode() for i in range(FETCHES)])

    def test_fifty_fetches_from_a_tasklet_http_server_take_about_one_delay(self):
        server = tasklet_servers.start_http_server()
        self.addCleanup(server.stop)
        bodies, elapsed = fetch_all(f"http://127.0.0.1:{server.port}/slow?delay={DELAY_S}", FETCHES)
        self.check_bodies(bodies)
        self.assertLess(elapsed, CONCURRENT_BOUND_S, "the fetches (or the server's requests) ran one after the other")

    def test_fifty_fetches_from_a_separate_python_process_take_about_one_delay(self):
        server = tasklet_servers.ProcessServer()
        self.addCleanup(server.stop)
        bodies, elapsed = fetch_all(f"http://127.0.0.1:{server.port}/slow?delay={DELAY_S}", FETCHES)
        self.check_bodies(bodies)
        self.assertLess(elapsed, CONCURRENT_BOUND_S, "the fetches ran one after the other")

    def test_fifty_https_fetches_from_a_tasklet_tls_server_take_about_one_delay(self):
        server_context, client_context = tasklet_servers.tls_contexts(*_certificate["files"])
        server = tasklet_servers.start_http_server(server_context)
        self.addCleanup(server.stop)
        bodies, elapsed = fetch_all(f"https://127.0.0.1:{server.port}/slow?delay={DELAY_S}", FETCHES,
                                    context=client_context)
        self.check_bodies(bodies)
        self.assertLess(elapsed, CONCURRENT_BOUND_S, "the TLS fetches ran one after the other")

    def test_fifty_https_fetches_from_a_separate_tls_process_take_about_one_delay(self):
        _, client_context = tasklet_servers.tls_contexts(*_certificate["files"])
        server = tasklet_servers.ProcessServer(_certificate["files"])
        self.addCleanup(server.stop)
        bodies, elapsed = fetch_all(f"https://localhost:{server.port}/slow?delay={DELAY_S}", FETCHES,
                                    context=client_context)
        self.check_bodies(bodies)
        self.assertLess(elapsed, CONCURRENT_BOUND_S, "the TLS fetches ran one after the other")


class HttpErrorsTest(StacklessTestCase):
    deadline_s = 30.0

    def test_a_fetch_past_its_timeout_raises_timeout_while_other_tasklets_run(self):
        server = tasklet_servers.start_http_server()
        self.addCleanup(server.stop)
        ticks = []

        def ticker():
            while True:
                ticks.append(1)
                time.sleep(0.01)

        stackless.tasklet(ticker)()
        with self.assertRaises(TimeoutError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{server.port}/slow?delay=5", timeout=0.3).read()
        self.assertEqual(caught.exception.args, ("timed out",))
        self.assertGreater(len(ticks), 5, "the main tasklet's wait blocked the thread")

    def test_an_untrusted_certificate_fails_the_handshake_with_ssls_error(self):
        server_context, _ = tasklet_servers.tls_contexts(*_certificate["files"])
        server = tasklet_servers.start_http_server(server_context)
        self.addCleanup(server.stop)
        with self.assertRaises(urllib.error.URLError) as caught:
            urllib.request.urlopen(f"https://127.0.0.1:{server.port}/x?delay=0", timeout=10,
                                   context=ssl.create_default_context())
        self.assertIsInstance(caught.exception.reason, ssl.SSLCertVerificationError)

    def test_a_tls_read_past_its_timeout_raises_ssls_message(self):
        server_context, client_context = tasklet_servers.tls_contexts(*_certificate["files"])
        server = tasklet_servers.start_http_server(server_context)
        self.addCleanup(server.stop)
        import socket
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as raw:
            with client_context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                tls.settimeout(0.2)
                with self.assertRaises(TimeoutError) as caught:
                    tls.recv(10)  # the server waits for a request
                self.assertEqual(caught.exception.args, ("The read operation timed out",))

    def test_connection_refused_is_urllibs_error_with_the_os_reason(self):
        import socket
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()  # nothing listens there now
        with self.assertRaises(urllib.error.URLError) as caught:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        self.assertIsInstance(caught.exception.reason, ConnectionRefusedError)


class SmtpTest(StacklessTestCase):
    deadline_s = 30.0

    def test_smtplib_clients_in_tasklets_are_served_by_tasklets_at_once(self):
        server = tasklet_servers.TaskletSMTPServer(delay=DELAY_S)
        running = tasklet_servers.RunningServer(server)
        self.addCleanup(running.stop)

        def send(i):
            with smtplib.SMTP("127.0.0.1", running.port, timeout=10) as client:
                client.sendmail("a@example.org", ["b@example.org"], f"Subject: {i}\r\n\r\nbody {i}\r\n")

        start = time.monotonic()
        uthread.parallel([lambda i=i: send(i) for i in range(10)], timeout=20)
        elapsed = time.monotonic() - start
        self.assertEqual(sorted(m.split(b"\r\n")[0] for m in server.messages),
                         sorted(f"Subject: {i}".encode() for i in range(10)))
        self.assertLess(elapsed, 10 * DELAY_S, "the sessions ran one after the other")


if __name__ == "__main__":
    unittest.main()
