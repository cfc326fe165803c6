#pragma once
// _movement: the Python face of the sol's native movement system. Built into
// the shard executable: PyImport_AppendInittab("_movement", PyInit__movement).
#include <Python.h>

extern "C" PyObject* PyInit__movement();
