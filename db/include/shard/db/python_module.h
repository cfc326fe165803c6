#pragma once
// The `_db` extension module (db.py's native half), built into shard.
// Register before the interpreter starts: PyImport_AppendInittab("_db", PyInit__db).
#include <Python.h>

extern "C" PyObject* PyInit__db();
