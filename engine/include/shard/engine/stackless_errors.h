#pragma once
#include <Python.h>

namespace shard::engine {

// builtins.TaskletExit / stackless.TaskletExit (a SystemExit subclass): kills a
// tasklet silently. Created when the stackless module is first imported.
extern PyObject* TaskletExitError;

// The exception instance for a `raise`-like (type, value, traceback) triple, as
// tasklet.throw and channel.send_throw take it; null with an error set if the
// arguments are not a valid raise.
PyObject* make_exception(PyObject* type, PyObject* value, PyObject* tb);

}  // namespace shard::engine
