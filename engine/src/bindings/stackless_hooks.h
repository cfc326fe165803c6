#pragma once
// The stackless module's callback, error handler and switch trap functions.
#include <Python.h>

namespace shard::engine {

// Adds them to the module; -1 with an error set on failure.
int add_hook_functions(PyObject* module);

}  // namespace shard::engine
