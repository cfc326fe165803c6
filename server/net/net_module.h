#pragma once
// The `_net` extension module: tasklets listen, accept, connect, receive and
// send packets over netproto's connections on the engine's IO threads. A
// receive (or a blocking send) parks only the calling tasklet, through
// await_completion(). Register before the interpreter starts:
// PyImport_AppendInittab("_net", PyInit__net).
//
// It lives in server/ because it is the one layer that may depend on both the
// engine (tasklets, the IO threads, the wait) and netproto (the wire), which
// know nothing of each other.
#include <Python.h>

extern "C" PyObject* PyInit__net();
