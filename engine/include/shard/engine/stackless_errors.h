#pragma once
#include <Python.h>

#include "shard/engine/tasklet_exit.h"

namespace shard::engine {

// The exception instance for a `raise`-like (type, value, traceback) triple, as
// tasklet.throw and channel.send_throw take it; null with an error set if the
// arguments are not a valid raise.
PyObject* make_exception(PyObject* type, PyObject* value, PyObject* tb);

// The exception instance exc_class(*args) for Stackless's (exc_class, *args)
// form, as tasklet.raise_exception and channel.send_exception take it:
// positional arguments only. Null with a TypeError worded as Stackless words
// it, by the method's qualified name ("channel.send_exception") and bare name.
PyObject* exception_from_class(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, const char* qualname,
                               const char* name);

}  // namespace shard::engine
