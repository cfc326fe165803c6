"""What the console's tests share: a password file, a real `shard run` node
serving the console (and /metrics) on free ports of 127.0.0.1, and an HTTP
client that keeps the session cookie and the CSRF token."""

import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "..", "engine", "tests", "python"))

import accounts  # noqa: E402
from support import SHARD_BINARY, SuspectedDeadlock  # noqa: E402

# name -> (role, password)
ACCOUNTS = {"view": ("viewer", "pw-view"), "ops": ("operator", "pw-ops"), "adm": ("admin", "pw-adm"),
            "locked": ("viewer", "pw-locked")}  # "locked": the throttle test's
START_TIMEOUT_S = 20.0

# The node's script: tasklets the tests look at and kill.
NODE_SCRIPT = """
import stackless, uthread

def sleeper():
    while True:
        uthread.Sleep(0.05)

def blocked(channel):
    channel.receive()

t = stackless.tasklet(sleeper)()
t.name = "test sleeper"
v = stackless.tasklet(sleeper)()
v.name = "test victim"  # the kill test's
channel = stackless.channel()
b = stackless.tasklet(blocked)(channel)
b.name = "test blocked"
print("script ready", flush=True)
"""


def write_password_file(directory):
    path = os.path.join(directory, "console-passwords")
    with open(path, "w", encoding="utf-8") as f:
        for name, (role, password) in ACCOUNTS.items():
            # Cheap parameters: the tests log in often; the format is the node's own.
            f.write("%s:%s:%s\n" % (name, role, accounts.hash_password(password, n=1 << 10)))
    return path


class Node:
    """`shard run` with the console on; its output goes to a file the tests read."""

    def __init__(self, *extra, metrics=True, password_file=True, env=None):
        self.directory = tempfile.TemporaryDirectory()
        d = self.directory.name
        script = os.path.join(d, "node_script.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(NODE_SCRIPT)
        self.log_path = os.path.join(d, "node.log")
        self.log = open(self.log_path, "wb")
        command = [SHARD_BINARY, "run", "--console-port", "0"] + list(extra)
        if password_file:
            command += ["--no-db", "--console-password-file", write_password_file(d)]
        if metrics:
            command += ["--metrics-port", "0"]
        self.process = subprocess.Popen(command + [script], stdout=self.log, stderr=subprocess.STDOUT, cwd=d, env=env)
        try:
            self.port = int(self.wait_for(r"admin console on https?://127\.0\.0\.1:(\d+)/").group(1))
            self.metrics_port = int(self.wait_for(r"metrics on http://127\.0\.0\.1:(\d+)/").group(1)) \
                if metrics else None
            self.wait_for(r"script ready")
        except BaseException:
            self.stop()
            raise

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_for(self, pattern, timeout=START_TIMEOUT_S):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            found = re.search(pattern, self.output())
            if found:
                return found
            if self.process.poll() is not None:
                raise AssertionError("the node exited (%s) before %r:\n%s" % (self.process.returncode, pattern,
                                                                             self.output()))
            time.sleep(0.05)
        raise SuspectedDeadlock("suspected deadlock: the node never logged %r:\n%s" % (pattern, self.output()))

    def alive(self):
        return self.process.poll() is None

    def stop(self):
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        self.directory.cleanup()


class Answer:

    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


class Client:
    """Requests to one node's console; keeps the cookie and the CSRF token it is given."""

    def __init__(self, port, host="127.0.0.1", tls=None):
        self.host, self.port, self.tls = host, port, tls
        self.cookie, self.csrf = None, None

    def request(self, method, path, body=None, headers=None, csrf=True, raw_body=None):
        if self.tls is not None:
            connection = http.client.HTTPSConnection(self.host, self.port, timeout=30, context=self.tls)
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        sent = dict(headers or {})
        if self.cookie:
            sent.setdefault("Cookie", self.cookie)
        if csrf and self.csrf:
            sent.setdefault("X-CSRF-Token", self.csrf)
        data = raw_body if raw_body is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        try:
            connection.request(method, path, data, sent)
            response = connection.getresponse()
            answer = Answer(response.status, response.getheaders(), response.read())
        finally:
            connection.close()
        return answer

    def login(self, name):
        answer = self.request("POST", "/api/login", {"name": name, "password": ACCOUNTS[name][1]})
        if answer.status == 200:
            self.cookie = answer.header("Set-Cookie").split(";", 1)[0]
            self.csrf = answer.json()["csrf"]
        return answer

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body=None, **kwargs):
        return self.request("POST", path, body if body is not None else {}, **kwargs)
