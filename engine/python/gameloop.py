"""The game loop, seen from Python.

    import gameloop, uthread

    def world_tick(frame, dt):          # phase 5 of every frame
        ...
    gameloop.add_tick(world_tick)
    gameloop.register_service(uthread.new(chat_service))
    gameloop.run()                      # until SIGINT/SIGTERM or gameloop.stop()

`shard run script.py` runs the script, then this loop. See docs/python-api.md.
"""

import _engine

run = _engine.loop_run
stop = _engine.loop_stop
running = _engine.loop_running
set_fps = _engine.set_fps
fps = _engine.fps
set_run_budget = _engine.set_run_budget
set_long_run_limit = _engine.set_long_run_limit
add_tick = _engine.add_tick
remove_tick = _engine.remove_tick
register_service = _engine.register_service
stats = _engine.frame_stats

call_in_thread = _engine.call_in_thread
set_dispatch_strategy = _engine.set_dispatch_strategy
dispatch_strategy = _engine.dispatch_strategy
dispatch_stats = _engine.dispatch_stats
reset_dispatch_stats = _engine.reset_dispatch_stats

STRATEGIES = ("main_loop", "on_block", "main_thread_callback", "worker_acquires_gil", "pending_call")


def tick(hook):
    """Decorator: registers hook(frame, dt) to run in phase 5 of every frame."""
    add_tick(hook)
    return hook
