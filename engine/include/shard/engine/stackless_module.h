#pragma once
// The `stackless` extension module, built into the shard executable. Register
// it before the interpreter starts: PyImport_AppendInittab("stackless", PyInit_stackless).

#include <Python.h>

extern "C" PyObject* PyInit_stackless();
