"""The private test server (ops/mariadb.sh) for the database tests.

ctest starts it (the `mariadb` fixture, db/tests/tests.cmake) and names its
directory in SHARD_DB_TEST_DIR; its client.env holds the SHARD_DB_* settings.
"""

import os
import subprocess

import db
import stackless
import uthread

SERVER_DIR = os.environ.get("SHARD_DB_TEST_DIR", "")
MARIADB_SH = os.environ.get("SHARD_MARIADB_SH", "")


def client_env():
    if not SERVER_DIR:
        raise RuntimeError("SHARD_DB_TEST_DIR is not set: run the database tests through ctest")
    env = {}
    with open(os.path.join(SERVER_DIR, "client.env"), encoding="utf-8") as f:
        for line in f:
            name, _, value = line.strip().partition("=")
            if name:
                env[name] = value
    return env


def connect(**overrides):
    settings = db.settings_from_env(client_env())
    settings.update(overrides)
    db.connect(**settings)


def server(command):
    """ops/mariadb.sh start|stop|restart on the test server (a blocking subprocess)."""
    subprocess.run(["bash", MARIADB_SH, command, SERVER_DIR], check=True, capture_output=True, timeout=60)


def after_others_ran(predicate):
    """For wait_until: lets the other tasklets run, and the completions that
    wake them be dispatched, before `predicate` is asked (a sleep of this
    tasklet idles the scheduler, which dispatches). Not `stackless.schedule()
    or ...`: schedule() returns the current tasklet, which is true, and
    dispatches nothing when no other tasklet is runnable."""
    uthread.Sleep(0.001)
    return predicate()


def run_tasklets(*funcs):
    """Runs each func in its own tasklet to the end; returns their results (or exceptions)."""
    results = [None] * len(funcs)

    def body(n, func):
        try:
            results[n] = func()
        except BaseException as e:  # report everything
            results[n] = e

    for n, func in enumerate(funcs):
        stackless.tasklet(body)(n, func)
    stackless.run()
    return results
