"""`shard console [--node HOST:PORT] [--json] COMMAND [ARGS]`: the admin
console's commands from a shell, through a node's console API (the same
route, checks and audit as the page). docs/console.md.

  stats                       frame statistics, strategy, dispatch latencies
  strategy [NAME]             the dispatch strategy in force, or set it
  fps [N]                     the frame rate, or set it
  budget [FRACTION]           the scheduler phase's run budget, or set it
                              (with --role sol|proxy: on every live node of that role)
  tasklets                    the tasklets: id, name, state, where
  kill ID                     kill a tasklet
  profile SECONDS             sample the node's Python for SECONDS
  exec CODE                   run CODE in a tasklet on the node (admin)
  logs [N]                    the node's last N log lines
  audit                       the changes made from this node's console
  passwd NAME ROLE            a password-file line for NAME (no node needed)

The account is --user (or SHARD_CONSOLE_USER); its password is the first
line of --password-file (or SHARD_CONSOLE_PASSWORD_FILE), else of standard
input: never on the command line, where `ps` shows it. Exit status: 0 done,
1 refused or failed (the message says why), 2 bad usage."""

import argparse
import http.client
import json
import os
import ssl
import sys

import accounts

from console_http import ROLES

TIMEOUT_S = 70.0  # a profile may take 60 s


class ConsoleError(Exception):
    pass


class Client:
    """A logged-in session on one node's console."""

    def __init__(self, host, port, timeout=TIMEOUT_S, tls=None):
        self.host, self.port, self.timeout = host, port, timeout
        self.tls = tls  # an ssl.SSLContext: the console serves TLS
        self.cookie, self.csrf = None, None

    def call(self, method, path, body=None):
        if self.tls is not None:
            connection = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.tls)
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        headers = {"Content-Type": "application/json"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        if self.csrf:
            headers["X-CSRF-Token"] = self.csrf
        try:
            connection.request(method, path, json.dumps(body) if body is not None else None, headers)
            response = connection.getresponse()
            data = response.read()
            cookie = response.getheader("Set-Cookie")
        except OSError as e:
            raise ConsoleError("cannot reach the console at %s:%d: %s" % (self.host, self.port, e)) from None
        finally:
            connection.close()
        try:
            value = json.loads(data) if data else None
        except ValueError:
            raise ConsoleError("%s %s: HTTP %d, not JSON" % (method, path, response.status)) from None
        if response.status != 200:
            raise ConsoleError("%s %s: HTTP %d: %s" % (method, path, response.status,
                                                       (value or {}).get("error", response.reason)))
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        return value

    def login(self, name, password):
        answer = self.call("POST", "/api/login", {"name": name, "password": password})
        self.csrf = answer["csrf"]
        return answer


def _setting(client, name, value, role):
    if value is None:
        return client.call("GET", "/api/stats")["settings"][name]
    body = {"name": name, "value": value}
    if role:
        body["role"] = role
    return client.call("POST", "/api/setting", body)


def _print_stats(s):
    f = s["frame"]
    print("node %s (%s): strategy %s, fps %g, run budget %g" % (s["node"], s["role"], s["strategy"], s["fps_target"],
                                                                   s["run_budget"]))
    print("frame %d: %.3f ms (wait %.3f, dispatch %.3f, timers %.3f, run %.3f, tick %.3f), overruns %d"
          % (f["frame"], f["frame_ms"], f["wait_ms"], f["dispatch_ms"], f["timers_ms"], f["run_ms"], f["tick_ms"],
             f["overruns"]))
    print("tasklets alive %d, switches %d, runnable %d, workers %d, IO threads %d"
          % (f["alive"], f["switches"], s["runnable"], s["workers"], s["io"]["threads"]))
    for name, d in s["dispatch"].items():
        lat = d["dispatch_latency"]
        print("  %-22s dispatch p50 %8.1f us  p99 %8.1f us  (%d completions)"
              % (name, lat["p50_us"], lat["p99_us"], d["completions"]))


def _print(command, result):
    if command == "stats":
        _print_stats(result)
    elif command == "cluster":
        for role, answers in sorted(result.items()):
            for node, s in sorted(answers.items()):
                if "error" in s:
                    print("%-5s %-16s %s" % (role, node, s["error"]))
                    continue
                f = s["frame"]
                print("%-5s %-16s %-20s fps %5.1f/%-4g frame %7.3f ms  overruns %-6d tasklets %-7d switches %d"
                      % (role, node, s["strategy"], f["fps"], s["fps_target"], f["frame_ms"], f["overruns"],
                         f["alive"], f["switches"]))
    elif command in ("strategy", "fps", "budget"):
        if isinstance(result, dict) and "nodes" in result:
            for node, answer in sorted(result["nodes"].items()):
                print("%s: %s" % (node, answer["error"] if "error" in answer
                                  else "%s -> %s" % (answer["old"], answer["value"])))
        else:
            print("%s -> %s" % (result["old"], result["value"]) if isinstance(result, dict) else result)
    elif command == "tasklets":
        for t in result:
            print("%-16d %-32s %-32s %s" % (t["id"], t["name"][:32], t["state"], t["where"]))
    elif command == "kill":
        print("killed tasklet %d %s (%s)" % (result["killed"], result["name"], result["where"]))
    elif command == "profile":
        print("%d samples in %g s" % (result["samples"], result["seconds"]))
        print("%7s %7s  %s" % ("self%", "total%", "function"))
        for r in result["rows"]:
            print("%7.1f %7.1f  %s" % (r["self_pct"], r["total_pct"], r["function"]))
    elif command == "exec":
        sys.stdout.write(result["output"])
    elif command == "logs":
        for line in result:
            print(line["line"])
    elif command == "audit":
        for e in result:
            print("%.3f %s from %s: %s %s -> %s" % (e["at"], e["who"], e["peer"], e["action"], e["detail"],
                                                   e["outcome"]))


def run(client, command, args):
    if command == "stats":
        return client.call("GET", "/api/stats")
    if command == "cluster":
        return client.call("GET", "/api/cluster")
    if command == "strategy":
        return _setting(client, "dispatch_strategy", args.value, args.role_scope)
    if command == "fps":
        return _setting(client, "fps", args.value, args.role_scope)
    if command == "budget":
        return _setting(client, "run_budget", args.value, args.role_scope)
    if command == "tasklets":
        return client.call("GET", "/api/tasklets")
    if command == "kill":
        return client.call("POST", "/api/kill", {"id": args.value})
    if command == "profile":
        return client.call("POST", "/api/profile", {"seconds": args.value or 5})
    if command == "exec":
        return client.call("POST", "/api/exec", {"code": args.value})
    if command == "logs":
        return client.call("GET", "/api/logs?count=%d" % int(args.value or 50))
    return client.call("GET", "/api/audit")


def _password(options):
    path = options.password_file or os.environ.get("SHARD_CONSOLE_PASSWORD_FILE")
    if path:
        with open(path, encoding="utf-8") as f:
            return f.readline().rstrip("\r\n")
    return sys.stdin.readline().rstrip("\r\n")


def main(argv):
    parser = argparse.ArgumentParser(prog="shard console", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--node", default="127.0.0.1:8080", metavar="HOST:PORT",
                        help="the node's console (default 127.0.0.1:8080)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON answer")
    parser.add_argument("--user", default=os.environ.get("SHARD_CONSOLE_USER"), help="the console account")
    parser.add_argument("--password-file", help="a file whose first line is the password")
    parser.add_argument("--tls", action="store_true", help="the console serves TLS (verified against the system's CAs)")
    parser.add_argument("--tls-ca", metavar="PEM", help="TLS, verified against this CA file (e.g. the dev certificate)")
    parser.add_argument("--role", dest="role_scope", choices=("sol", "proxy"),
                        help="strategy/fps/budget: set it on every live node of this role (the cluster directory)")
    parser.add_argument("command", choices=("stats", "cluster", "strategy", "fps", "budget", "tasklets", "kill", "profile",
                                            "exec", "logs", "audit", "passwd"))
    parser.add_argument("value", nargs="?")
    parser.add_argument("role", nargs="?", help="passwd: the console role (%s)" % ", ".join(ROLES))
    options = parser.parse_args(argv)
    if options.command in ("kill", "exec") and options.value is None:
        parser.error("%s needs an argument" % options.command)
    if options.role_scope and (options.command not in ("strategy", "fps", "budget") or options.value is None):
        parser.error("--role goes with setting strategy, fps or budget")
    if options.command == "passwd":
        if options.value is None or options.role not in ROLES:
            parser.error("passwd NAME ROLE (ROLE: %s)" % ", ".join(ROLES))
        try:
            print("%s:%s:%s" % (options.value, options.role, accounts.hash_password(_password(options))))
        except accounts.AccountError as e:
            print("shard console passwd: %s" % e, file=sys.stderr)
            return 1
        return 0
    if not options.user:
        parser.error("--user (or SHARD_CONSOLE_USER) names the console account")
    host, _, port = options.node.rpartition(":")
    if not host or not port.isdigit():
        parser.error("--node is HOST:PORT, not %r" % options.node)
    tls = ssl.create_default_context(cafile=options.tls_ca) if options.tls or options.tls_ca else None
    client = Client(host.strip("[]"), int(port), tls=tls)
    try:
        client.login(options.user, _password(options))
        result = run(client, options.command, options)
    except ConsoleError as e:
        print("shard console %s: %s" % (options.command, e), file=sys.stderr)
        return 1
    if options.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        _print(options.command, result)
    if isinstance(result, dict) and any("error" in a for a in result.get("nodes", {}).values()):
        return 1  # a node of the role refused or did not answer
    return 0 if options.command != "exec" or result.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
