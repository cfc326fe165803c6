#pragma once
// `_engine.io_wait` and `_engine.io_wait_any`: a tasklet waits for a
// descriptor's readiness on the IO threads (shard/engine/fd_wait.h). What
// tasklet sockets, select and selectors wait with inside the shard.

#include <Python.h>

namespace shard::engine {

// Adds io_wait and io_wait_any to the _engine module; -1 with an error set.
int add_io_wait(PyObject* module);

}  // namespace shard::engine
