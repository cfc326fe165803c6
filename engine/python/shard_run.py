"""`shard run [options] SCRIPT [ARGS...]`: runs SCRIPT as __main__ to set up
tasklets, then runs the game loop until SIGINT/SIGTERM (exit status 0)."""

import argparse
import logging
import runpy
import sys

import gameloop


def main(argv):
    parser = argparse.ArgumentParser(prog="shard run", description=__doc__)
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    parser.add_argument("--strategy", choices=gameloop.STRATEGIES, default="main_loop",
                        help="how completed off-thread work wakes its tasklet")
    parser.add_argument("--run-budget", type=float, default=0.5,
                        help="soft budget of the scheduler phase, as a fraction of the frame")
    parser.add_argument("--long-run-ms", type=float, default=50.0,
                        help="log a tasklet that runs this long without switching")
    parser.add_argument("script")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    options = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    gameloop.set_fps(options.fps)
    gameloop.set_dispatch_strategy(options.strategy)
    gameloop.set_run_budget(options.run_budget)
    gameloop.set_long_run_limit(options.long_run_ms)
    sys.argv = [options.script] + options.args
    runpy.run_path(options.script, run_name="__main__")
    gameloop.run()


if __name__ == "__main__":
    main(sys.argv[1:])
