"""The node runtime: `shard proxy|sol` checked the configuration (prefs.ini and
the command line, server/src/node_prefs.cpp) and runs this module, which
reads it from `_prefs`:

  logging and the game loop's settings; then, in a tasklet inside the running
  loop, the database (db.py), its migrations and the role's node
  (proxy_node.py, sol_node.py); the loop until SIGINT/SIGTERM; then a clean
  leave from the cluster directory.

Exit status: 0 after a clean stop; 1 when the node cannot start (the
database, its name, its port) or the cluster marked it gone while it ran.
"""

import faulthandler
import logging
import signal
import sys

import _engine
import _prefs
import db
import db_migrate
import gameloop
import live_settings
import node_settings
import uthread

import cluster_directory
import cluster_membership
import console_node
import proxy_node
import sol_node

log = logging.getLogger("shard.node")

ROLES = {"proxy": proxy_node.ProxyNode, "sol": sol_node.SolNode}


def db_settings(prefs):
    """db.connect()'s settings from the db.* keys (the password from its file)."""
    password = ""
    if prefs["db.password_file"]:
        with open(prefs["db.password_file"], encoding="utf-8") as f:
            password = f.read().strip()
    settings = {key[len("db."):]: value for key, value in prefs.items() if key.startswith("db.")}
    del settings["password_file"]
    settings["password"] = password
    return settings


def main():
    prefs = _prefs.values()
    role = _prefs.role
    prefs["node.name"] = prefs["node.name"] or cluster_membership.default_name(role)
    # Each line names its node: several nodes often log to one terminal.
    logging.basicConfig(level=prefs["node.log_level"].upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s " + prefs["node.name"].replace("%", "%%")
                        + " %(name)s: %(message)s")
    gameloop.set_fps(prefs["loop.fps"])
    gameloop.set_dispatch_strategy(prefs["loop.strategy"])
    gameloop.set_run_budget(prefs["loop.run_budget"])
    gameloop.set_long_run_limit(prefs["loop.long_run_ms"])
    log.info("%s node: game loop at %g fps, dispatch strategy %s, %d IO threads", role, gameloop.fps(),
             gameloop.dispatch_strategy(), _engine.io_stats()["threads"])
    # `kill -USR1 <pid>`: the running tasklet's Python stack on stderr (a
    # node that spins shows where); a fatal signal (an abort included, after
    # the C++ report of shard's terminate handler) dumps every thread's too.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    faulthandler.enable(all_threads=True)
    node = ROLES[role](prefs)
    failed = []

    def start():
        # In a tasklet of the running loop, like everything the node does:
        # its database calls park only this tasklet while frames go on.
        try:
            db.connect(**db_settings(prefs))
            # Migrations, then the live settings (client_idle_timeout_s, ...), watched while the node runs.
            node_settings.register_all(fps=prefs["loop.fps"], dispatch_strategy=prefs["loop.strategy"],
                                       run_budget=prefs["loop.run_budget"], log_level=prefs["node.log_level"].upper())
            live_settings.start()
            node.start()
            if prefs["console.port"] >= 0:
                console_node.start_from_prefs(prefs, role, node.member.node_id)
        except (OSError, ValueError, db.Error, TimeoutError, db_migrate.SchemaTooNew, cluster_directory.NameTaken) as e:
            log.error("cannot start the %s node: %s", role, e)
            failed.append(e)
            gameloop.stop()

    # A service: a SIGTERM during the start ends it too.
    gameloop.register_service(uthread.new(start))
    try:
        gameloop.run()
    finally:
        live_settings.stop()
        try:
            node.stop()
        except (db.Error, TimeoutError) as e:
            log.error("could not leave the cluster directory: %s (the others mark this node gone after %g s)",
                      e, prefs["cluster.node_timeout"])
        db.close()
    if failed or (node.member is not None and node.member.lost is not None):
        return 1
    log.info("stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
