"""Network item 8(d): 100 tasklets each fetch, with urllib.request, a local
endpoint that answers after 200 ms; total time and frame overruns. The same
fetches by gevent's monkey-patched urllib are the peer.

  /usr/bin/python3.11 tools/bench/urllib_bench.py serve [--delay 0.2]
        the endpoint (ThreadingHTTPServer, a thread per request): prints "port N"
  build/bin/shard run [--strategy S] [--run-budget B] tools/bench/urllib_bench.py shard --port N [--run-budget B]
        the fetches in tasklets, inside shard run's game loop (tasklet sockets)
  /usr/bin/python3.11 tools/bench/urllib_bench.py gevent --port N [--fetches 100]
        the fetches in greenlets, after gevent.monkey.patch_all()

tools/bench/urllib_bench.sh runs them all; one JSON line per run on stdout.
"""

import argparse
import json
import platform
import sys
import time


def serve(options):
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(options.delay)
            body = b"answered after %g s\n" % options.delay
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 1024  # every client connects at once

    server = Server(("127.0.0.1", 0), Handler)
    print("port", server.server_address[1], flush=True)
    server.serve_forever()


def fetcher(port, results):
    import urllib.request

    def fetch(i):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?i={i}", timeout=30) as response:
            results.append(len(response.read()))

    return fetch


def emit(impl, options, seconds, ok, **extra):
    print(json.dumps(dict(bench="urllib_fetches", impl=impl, python=platform.python_version(),
                          fetches=options.fetches, answered=ok, total_s=round(seconds, 4), **extra)), flush=True)


def run_shard(options):
    import gameloop
    import stackless

    results = []
    fetch = fetcher(options.port, results)
    worst = {}

    @gameloop.tick
    def watch_frames(frame, dt):  # the slowest frame of the run, with its phases
        stats = gameloop.stats()
        if stats["frame_ms"] > worst.get("frame_ms", -1):
            worst.update((k, stats[k]) for k in ("frame_ms", "wait_ms", "dispatch_ms", "run_ms", "tick_ms",
                                                 "longest_run_ms", "overrun"))

    def all_fetches():
        # Started from a tasklet once the loop runs, so the figure is the loop's.
        before = gameloop.stats()["overruns"]
        done = stackless.channel()
        start = time.monotonic()

        def one(i):
            try:
                fetch(i)
            finally:
                done.send(None)

        for i in range(options.fetches):
            stackless.tasklet(one)(i)
        for _ in range(options.fetches):
            done.receive()
        seconds = time.monotonic() - start
        emit("shard", options, seconds, len(results), strategy=gameloop.dispatch_strategy(), fps=gameloop.fps(),
             run_budget=options.run_budget,
             frame_overruns=gameloop.stats()["overruns"] - before, worst_frame=worst)
        gameloop.stop()

    stackless.tasklet(all_fetches)()


def run_gevent(options):
    from gevent import monkey
    monkey.patch_all()
    import gevent

    results = []
    fetch = fetcher(options.port, results)
    start = time.monotonic()
    gevent.joinall([gevent.spawn(fetch, i) for i in range(options.fetches)])
    emit("gevent", options, time.monotonic() - start, len(results), gevent=gevent.__version__)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("serve", "shard", "gevent"))
    parser.add_argument("--port", type=int)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--fetches", type=int, default=100)
    parser.add_argument("--run-budget", type=float, default=0.5, help="shard: what shard run was given (reported)")
    options = parser.parse_args(argv)
    {"serve": serve, "shard": run_shard, "gevent": run_gevent}[options.mode](options)


if __name__ == "__main__":
    main(sys.argv[1:])
