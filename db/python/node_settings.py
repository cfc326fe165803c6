"""The settings every node has (docs/database.md, "Live settings").

    node_settings.register_all(fps=30, dispatch_strategy="main_loop", run_budget=0.5)

The defaults are the node's own (its command line): a row in the settings
table overrides them while it exists. The game loop's settings are applied
to the running loop; the network's (client_idle_timeout_s, compression) are
values its layer reads with live_settings.get() and follows with
live_settings.subscribe(): nothing here reaches into it.
"""

import logging

import gameloop
import live_settings
from live_settings import choice, number

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
COMPRESSIONS = ("snappy", "zlib", "none")  # the wire's codecs (docs/protocol.md)
DEFAULT_CLIENT_IDLE_TIMEOUT_S = 120.0


def _set_log_level(name):
    logging.getLogger().setLevel(name)


def register_all(fps, dispatch_strategy, run_budget, log_level="INFO", client_idle_timeout_s=DEFAULT_CLIENT_IDLE_TIMEOUT_S,
                 compression="snappy", registry=None):
    registry = registry or live_settings.registry
    registry.register("fps", number(1, 1000), float(fps), apply=gameloop.set_fps,
                      doc="frames per second of the game loop")
    registry.register("dispatch_strategy", choice(*gameloop.STRATEGIES), dispatch_strategy,
                      apply=gameloop.set_dispatch_strategy, doc="how a completed request wakes its tasklet")
    registry.register("run_budget", number(0, 1, low_open=True), float(run_budget), apply=gameloop.set_run_budget,
                      doc="the scheduler phase's soft budget, a fraction of the frame")
    registry.register("log_level", choice(*LOG_LEVELS), log_level, apply=_set_log_level,
                      doc="the root logger's level")
    registry.register("client_idle_timeout_s", number(0, 86400), float(client_idle_timeout_s),
                      doc="a client connection silent this long is closed (0: never); read by the network layer")
    registry.register("compression", choice(*COMPRESSIONS), compression,
                      doc="the codec offered to clients; read by the network layer")
    return registry
