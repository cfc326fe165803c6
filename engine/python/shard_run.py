"""`shard run [options] SCRIPT [ARGS...]`: runs SCRIPT as __main__ to set up
tasklets, then runs the game loop until SIGINT/SIGTERM (exit status 0).

With a database (--db, or SHARD_DB_HOST / SHARD_DB_SOCKET in the
environment; --no-db: none), the node first connects (SHARD_DB_* settings,
docs/database.md), applies the pending schema migrations, reads the live
settings and watches them while it runs; a database it cannot reach, or
whose schema is newer than this code, stops it before the script runs."""

import argparse
import logging
import os
import runpy
import sys

import gameloop


def database_wanted(options, environ=os.environ):
    if options.db is not None:
        return options.db
    return bool(environ.get("SHARD_DB_HOST") or environ.get("SHARD_DB_SOCKET"))


def start_database(options):
    """Migrations and live settings; SystemExit with the reason if the node cannot run on this database."""
    # The database layer sits above the engine: imported only by a node that uses it.
    import live_settings
    import node_settings

    node_settings.register_all(fps=options.fps, dispatch_strategy=options.strategy, run_budget=options.run_budget)
    live_settings.start_or_exit("shard run")


def start_console(options):
    # The console sits above the engine (server/console): imported only when asked for.
    import console_node

    try:
        console_node.start("run-%d" % os.getpid(), "run", options.console_address, options.console_port,
                           options.console_password_file, database=database_wanted(options),
                           metrics_port=options.metrics_port, run_budget=options.run_budget,
                           session_idle_s=options.console_session_idle, tls_cert=options.console_tls_cert,
                           tls_key=options.console_tls_key)
    except (OSError, ValueError) as e:
        sys.exit("shard run: cannot start the console: %s" % e)


def main(argv):
    parser = argparse.ArgumentParser(prog="shard run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    parser.add_argument("--strategy", choices=gameloop.STRATEGIES, default="main_loop",
                        help="how completed off-thread work wakes its tasklet")
    parser.add_argument("--run-budget", type=float, default=0.5,
                        help="soft budget of the scheduler phase, as a fraction of the frame")
    parser.add_argument("--long-run-ms", type=float, default=50.0,
                        help="log a tasklet that runs this long without switching")
    parser.add_argument("--db", action=argparse.BooleanOptionalAction, default=None,
                        help="use the database of the SHARD_DB_* settings: migrations, live settings "
                             "(default: when SHARD_DB_HOST or SHARD_DB_SOCKET is set)")
    parser.add_argument("--console-port", type=int, default=None, metavar="PORT",
                        help="serve the admin console on PORT (0: any free port; docs/console.md)")
    parser.add_argument("--console-address", default="127.0.0.1", help="the console's numeric IP (default 127.0.0.1)")
    parser.add_argument("--console-password-file", default="", metavar="FILE",
                        help="console accounts as name:role:hash lines (default: the database's accounts)")
    parser.add_argument("--console-tls-cert", default="", metavar="PEM",
                        help="serve the console over TLS with this certificate chain (and --console-tls-key)")
    parser.add_argument("--console-tls-key", default="", metavar="PEM", help="the console's TLS private key")
    parser.add_argument("--console-session-idle", type=float, default=1800.0, metavar="SECONDS",
                        help="a console session ends after this long without a request (default 1800)")
    parser.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve Prometheus /metrics on PORT, without a session (default: off)")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gameloop.set_fps(options.fps)
    gameloop.set_dispatch_strategy(options.strategy)
    gameloop.set_run_budget(options.run_budget)
    gameloop.set_long_run_limit(options.long_run_ms)
    if database_wanted(options):
        start_database(options)
    if options.console_port is not None:
        start_console(options)
    sys.argv = [options.script] + options.args
    runpy.run_path(options.script, run_name="__main__")
    gameloop.run()


if __name__ == "__main__":
    main(sys.argv[1:])
