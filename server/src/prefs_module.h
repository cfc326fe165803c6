#pragma once
// The `_prefs` built-in module: a node's checked configuration, for the node
// runtime in Python (server/python/node_main.py). `_prefs.role` is "proxy" or
// "sol", `_prefs.values` a new dict {section.key: int | float | str} on each
// call of `_prefs.values()`. Set before the interpreter starts, then register:
//   set_node_prefs(prefs); PyImport_AppendInittab("_prefs", PyInit__prefs);
#include <Python.h>

#include "node_prefs.h"

namespace shard::server {

// Kept for the module; call once, before the interpreter starts.
void set_node_prefs(NodePrefs prefs);

}  // namespace shard::server

extern "C" PyObject* PyInit__prefs();
