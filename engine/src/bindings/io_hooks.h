#pragma once
// The IO threads seen from Python: started with the engine, stopped at exit,
// and the `_engine` test hooks that exercise await_completion() without a
// network layer (io_timer, io_resolve, io_stats, io_stop, io_start).

#include <Python.h>

namespace shard::engine {

// Interpreter start-up (main thread, GIL held): starts the IO threads and
// registers their stop at exit. False with OSError when they cannot start.
bool start_engine_io();

// Adds the io_* functions to the _engine module; -1 with an error set.
int add_io_hooks(PyObject* module);

}  // namespace shard::engine
