"""Real servers for the tasklet-socket tests: http.server and a small SMTP
server run by tasklets of this process (one tasklet per connection), the same
HTTP server in a separate /usr/bin/python3.11 process (stock blocking sockets,
a thread per connection), and a throwaway TLS certificate made with the
openssl command line.

The HTTP handler is delay_http.py's, in both.
"""

import http.server
import os
import socketserver
import ssl
import subprocess
import tempfile
import time

import stackless

import delay_http
from delay_http import DelayHandler

PYTHON3 = "/usr/bin/python3.11"


class TaskletServerMixIn:
    """socketserver: each request in its own tasklet (ThreadingMixIn, with tasklets)."""

    request_queue_size = 128  # 50 clients connect at once

    def process_request(self, request, client_address):
        stackless.tasklet(self._serve_one)(request, client_address)

    def _serve_one(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)


class TaskletHTTPServer(TaskletServerMixIn, http.server.HTTPServer):
    pass


class RunningServer:
    """A socketserver served by a tasklet until stop(): kills that tasklet (a
    stock shutdown() would wait for a thread) and closes the listener."""

    def __init__(self, server):
        self.server = server
        self.port = server.server_address[1]
        self.tasklet = stackless.tasklet(server.serve_forever)(0.05)

    def stop(self):
        if self.tasklet.alive:
            self.tasklet.kill()
        self.server.server_close()


def start_http_server(tls_context=None):
    server = TaskletHTTPServer(("127.0.0.1", 0), DelayHandler)
    if tls_context is not None:
        # The handshake happens in the request's tasklet (its first read), not in accept().
        server.socket = tls_context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    return RunningServer(server)


class SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib.sendmail(); each message is kept in server.messages
    after `server.delay` seconds (time.sleep)."""

    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self):
        self.reply("220 localhost test SMTP")
        while True:
            line = self.rfile.readline(1000)
            if not line:
                return
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                self.reply("250-localhost")
                self.reply("250 8BITMIME")
            elif verb in (b"HELO", b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                self.reply("250 OK")
            elif verb == b"DATA":
                self.reply("354 end with .")
                lines = []
                while (line := self.rfile.readline(1000)) not in (b".\r\n", b""):
                    lines.append(line)
                time.sleep(self.server.delay)
                self.server.messages.append(b"".join(lines))
                self.reply("250 queued")
            elif verb == b"QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 unknown")


class TaskletSMTPServer(TaskletServerMixIn, socketserver.TCPServer):
    def __init__(self, delay):
        super().__init__(("127.0.0.1", 0), SmtpHandler)
        self.delay = delay
        self.messages = []


class ProcessServer:
    """The HTTP(S) server in a separate python3.11 process, until stop()."""

    def __init__(self, cert=None):
        args = [PYTHON3, delay_http.__file__] + (list(cert) if cert else [])
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        # Blocks this thread for the server's start-up (a stock pipe read): fine in a test.
        self.port = int(self.process.stdout.readline())

    def stop(self):
        self.process.kill()
        self.process.wait()
        self.process.stdout.close()


def make_certificate(directory):
    """A self-signed certificate for 127.0.0.1 and localhost: (certfile, keyfile)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True, timeout=30)
    return cert, key


def tls_contexts(cert, key):
    """(server context, client context trusting `cert`)."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    client = ssl.create_default_context(cafile=cert)
    return server, client


def temporary_directory():
    return tempfile.TemporaryDirectory(prefix="shard-tasklet-sockets-")
