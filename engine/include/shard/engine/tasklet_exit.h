#pragma once
// TaskletExit (a SystemExit subclass): raised in a tasklet to end it silently
// (kill()). The core raises it and recognises it when a tasklet ends; the
// stackless module exports it (stackless.TaskletExit, builtins.TaskletExit).

#include <Python.h>

namespace shard::engine {

// Null until ensure_tasklet_exit() made it.
extern PyObject* TaskletExitError;
// Makes the exception class once; -1 with a Python error set on failure.
int ensure_tasklet_exit();

}  // namespace shard::engine
