"""Starting a node's console from its configuration: `shard proxy|sol`
(prefs.ini's [console] keys, node_main.py) and `shard run` (--console-*
options) both call start(). docs/console.md."""

import logging

import console_audit
import console_auth
import console_cluster
import console_commands
import console_service

log = logging.getLogger("shard.console")


def start(node_name, role, address="127.0.0.1", port=0, password_file="", database=False, metrics_address="",
          metrics_port=None, run_budget=0.5, session_idle_s=1800.0, node_id=None, tls_cert="", tls_key=""):
    """A started Console. Accounts: the password file when one is given,
    else the database's accounts (console_role). ValueError/OSError when it
    cannot start (no accounts to check, a bad password file, a taken port)."""
    if password_file:
        accounts = console_auth.FileAccounts(password_file)
    elif database:
        accounts = console_auth.DatabaseAccounts()
    else:
        raise ValueError("the console needs accounts: a database (accounts.console_role) or a password file")
    console = None
    commands = console_commands.Commands(node_name, role, run_budget=run_budget,
                                         server_stats=lambda: console.server.stats() if console.server else {})
    # With a database, sessions are shared: log in once, use any node's console.
    shared = console_auth.SharedSessions(session_idle_s) if database else None
    console = console_service.Console(commands, console_auth.Auth(accounts, idle_s=session_idle_s, shared=shared),
                                      console_audit.Audit(node_name, database), cluster=node_id is not None)
    console.start(address, port, metrics_address or address, metrics_port, tls_cert, tls_key)
    if node_id is not None:
        console_cluster.register(node_id, address, console.server.port)
    return console


def start_from_prefs(prefs, role, node_id):
    """A node's console from its [console] keys (server/prefs.ini); the node has a database."""
    metrics_port = prefs["console.metrics_port"]
    return start(prefs["node.name"], role, prefs["console.address"], prefs["console.port"],
                 prefs["console.password_file"], database=True, metrics_address=prefs["console.metrics_address"],
                 metrics_port=metrics_port if metrics_port >= 0 else None, run_budget=prefs["loop.run_budget"],
                 session_idle_s=prefs["console.session_idle"], node_id=node_id, tls_cert=prefs["console.tls_cert"],
                 tls_key=prefs["console.tls_key"])
