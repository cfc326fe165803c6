"""The admin console's Must-reach figures (docs/benchmarks.md, "Admin console"):

1. a strategy toggled through the console API takes effect within one frame:
   the round trip of POST /api/setting (the node answers once the strategy
   is in force), in ms and in frames at the node's frame rate, under each
   strategy in force when the request arrives;
2. the console with a page attached and its 1 Hz push costs the node under
   1 % of a frame: the main thread's CPU time per push (statistics + JSON,
   measured in the node by /api/exec), and the node's busy time over a run
   with a WebSocket attached beside one without;
3. with --browser: the page (Chromium through chromium-driver and selenium)
   shows a strategy switched from it, seconds from the click to the text;
4. the peer: GET of the same statistics from CPython's http.server
   (ThreadingHTTPServer, /usr/bin/python3.11, another process) beside
   GET /api/stats from the node's console.

  build/bin/shard python tools/bench/console_bench.py [--toggles 60] [--seconds 10] [--fps 30] [--browser]
"""

import argparse
import base64
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "server", "console", "tests", "python"))

from console_support import Client, Node  # noqa: E402

PEER = r"""
import http.server, sys
body = open(sys.argv[1], "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def get_latencies(port, path, n, cookie=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Cookie": cookie} if cookie else {}
    out = []
    for _ in range(n):
        t = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        out.append((time.perf_counter() - t) * 1e3)
    connection.close()
    return out


class WebSocketReader(threading.Thread):
    """A page's push connection, by hand: counts the frames it receives."""

    def __init__(self, port, cookie):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nCookie: %s\r\n\r\n"
                           % (key, cookie)).encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        assert head.startswith(b"HTTP/1.1 101"), head
        self.frames = 0
        self.stopped = False

    def recv_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def run(self):
        try:
            while not self.stopped:
                b0, b1 = self.recv_exact(2)
                size = b1 & 0x7F
                if size == 126:
                    size = int.from_bytes(self.recv_exact(2), "big")
                elif size == 127:
                    size = int.from_bytes(self.recv_exact(8), "big")
                self.recv_exact(size)
                self.frames += 1
        except (OSError, EOFError):
            pass


def page_switches(port, count):
    """Seconds from the Apply click to the page showing the new strategy, `count` times."""
    import shutil
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from console_support import ACCOUNTS
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    profile = tempfile.TemporaryDirectory()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--user-data-dir=" + profile.name):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        browser.get("http://127.0.0.1:%d/login" % port)
        browser.find_element(By.ID, "name").send_keys("ops")
        browser.find_element(By.ID, "password").send_keys(ACCOUNTS["ops"][1])
        browser.find_element(By.ID, "submit").click()
        wait = WebDriverWait(browser, 15, poll_frequency=0.005)
        wait.until(lambda b: b.find_element(By.ID, "strategy_now").text != "")
        shown = []
        for i in range(count):
            wanted = ("pending_call", "main_loop")[i % 2]
            Select(browser.find_element(By.ID, "strategy")).select_by_value(wanted)
            clicked = time.perf_counter()
            browser.find_element(By.ID, "apply").click()
            wait.until(lambda b: b.find_element(By.ID, "strategy_now").text == wanted)
            shown.append(time.perf_counter() - clicked)
        return shown
    finally:
        browser.quit()
        profile.cleanup()


def busy_ms(client, seconds):
    first = client.get("/api/stats").json()["frame"]
    time.sleep(seconds)
    last = client.get("/api/stats").json()["frame"]
    return last["busy_ms_total"] - first["busy_ms_total"], last["frame"] - first["frame"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--toggles", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--gets", type=int, default=300)
    parser.add_argument("--browser", action="store_true", help="also time the page in Chromium (20 switches)")
    options = parser.parse_args()
    node = Node("--fps", str(options.fps), metrics=False)
    try:
        client = Client(node.port)
        client.login("adm")
        frame_ms = 1e3 / options.fps

        # 1. toggles
        by_strategy = {}
        strategies = ["main_loop", "pending_call", "on_block", "main_thread_callback"]
        for i in range(options.toggles):
            before = strategies[i % len(strategies)]
            after = strategies[(i + 1) % len(strategies)]
            t = time.perf_counter()
            answer = client.post("/api/setting", {"name": "dispatch_strategy", "value": after})
            elapsed = (time.perf_counter() - t) * 1e3
            assert answer.status == 200 and answer.json()["value"] == after, answer.body
            by_strategy.setdefault(before, []).append(elapsed)
            time.sleep(0.01)
        client.post("/api/setting", {"name": "dispatch_strategy", "value": "main_loop"})
        for strategy, values in by_strategy.items():
            print(json.dumps({"bench": "toggle_round_trip", "in_force": strategy, "n": len(values),
                              "p50_ms": round(pct(values, 50), 3), "p99_ms": round(pct(values, 99), 3),
                              "max_ms": round(max(values), 3), "max_frames": round(max(values) / frame_ms, 2)}))

        # 2. the push's cost on the main thread, measured in the node
        code = ("import console_commands, gc, json, time\n"
                "c = next(o for o in gc.get_objects() if isinstance(o, console_commands.Commands))\n"
                "t = time.thread_time()\n"  # the main thread's CPU time: other processes' load does not count
                "for _ in range(200): json.dumps({'type': 'stats', 'stats': c.stats()}, separators=(',', ':'), "
                "default=str)\n"
                "print((time.thread_time() - t) / 200 * 1e6)\n")
        push_us = float(client.post("/api/exec", {"code": code}).json()["output"])
        print(json.dumps({"bench": "push_main_thread_cost", "us_per_push": round(push_us, 1),
                          "pct_of_frame_per_second": round(100 * push_us / 1e3 / frame_ms, 3)}))

        # A/B: busy time of the main thread with and without a page attached.
        idle_busy, idle_frames = busy_ms(client, options.seconds)
        reader = WebSocketReader(node.port, client.cookie)
        reader.start()
        time.sleep(1.5)
        attached_busy, attached_frames = busy_ms(client, options.seconds)
        reader.stopped = True
        per_frame_idle = idle_busy / max(1, idle_frames)
        per_frame_attached = attached_busy / max(1, attached_frames)
        print(json.dumps({"bench": "busy_per_frame", "no_page_ms": round(per_frame_idle, 4),
                          "page_attached_ms": round(per_frame_attached, 4), "pushes_received": reader.frames,
                          "difference_pct_of_frame": round(100 * (per_frame_attached - per_frame_idle) / frame_ms,
                                                           3)}))

        if options.browser:
            shown = page_switches(node.port, 20)
            print(json.dumps({"bench": "page_shows_switch", "n": len(shown), "p50_s": round(pct(shown, 50), 3),
                              "max_s": round(max(shown), 3)}))

        # 4. GET /api/stats from the console beside the same body from CPython's http.server.
        body = client.get("/api/stats").body
        ours = get_latencies(node.port, "/api/stats", options.gets, client.cookie)
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            f.write(body)
            f.flush()
            peer = subprocess.Popen(["/usr/bin/python3.11", "-c", PEER, f.name], stdout=subprocess.PIPE, text=True)
            try:
                peer_port = int(peer.stdout.readline())
                theirs = get_latencies(peer_port, "/", options.gets)
            finally:
                peer.terminate()
                peer.wait()
        for who, values in (("shard console /api/stats (live, authenticated)", ours),
                            ("CPython http.server (static body)", theirs)):
            print(json.dumps({"bench": "get_stats", "server": who, "bytes": len(body), "n": len(values),
                              "p50_ms": round(pct(values, 50), 3), "p99_ms": round(pct(values, 99), 3),
                              "mean_ms": round(statistics.mean(values), 3)}))
    finally:
        node.stop()


if __name__ == "__main__":
    main()
