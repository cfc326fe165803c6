#pragma once
// The `_engine` extension module (uthread's native half), built into shard.
// Register before the interpreter starts: PyImport_AppendInittab("_engine", PyInit__engine).
#include <Python.h>

extern "C" PyObject* PyInit__engine();
