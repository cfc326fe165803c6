#pragma once
// _console: the admin console's HTTP server (http_server.h) for Python:
// serve(host, port) -> Server with next_request(), respond(), upgrade(),
// broadcast(), close(), stats(), port. Built into `shard` like _net.

#include <Python.h>

extern "C" PyObject* PyInit__console();
