#pragma once
// What the _net module's files share: the Python types wrapping netproto's
// Connection and Listener, the exceptions, and the helpers of their waits.

#include <Python.h>

#include <cstdint>
#include <memory>

#include "shard/engine/asio.h"
#include "shard/netproto/connection.h"
#include "shard/netproto/listener.h"

namespace shard::net {

// _net.error (an OSError) and its kinds; set by the module's init.
struct Exceptions {
  PyObject* error = nullptr;
  PyObject* peer_closed = nullptr;
  PyObject* protocol_error = nullptr;
  PyObject* too_large = nullptr;
  PyObject* backpressure = nullptr;
  PyObject* idle_timeout = nullptr;  // also a TimeoutError
};
extern Exceptions exceptions;

// Raises the exception for a closed connection's reason; returns null.
std::nullptr_t raise_closed(const netproto::Connection& connection);

struct ConnectionObject {
  PyObject_HEAD
  // The context first: the connection (its socket) is destroyed before it.
  std::shared_ptr<boost::asio::io_context> context;
  std::shared_ptr<netproto::Connection> connection;
  bool blockingsend;
};
extern PyTypeObject ConnectionType;
// A new Python connection for a started one; null with an error set.
PyObject* wrap_connection(std::shared_ptr<boost::asio::io_context> context,
                          std::shared_ptr<netproto::Connection> connection);

struct ListenerObject {
  PyObject_HEAD
  std::shared_ptr<boost::asio::io_context> context;
  std::shared_ptr<netproto::Listener> listener;
  std::shared_ptr<netproto::NativeHandlers> native;  // null without native kinds
};
extern PyTypeObject ListenerType;

// A timeout in seconds (< 0: none) as a deadline on the engine's clock (0: none).
int64_t deadline_of(double timeout);
// Before a call parks its tasklet: the scheduler learns where the call's
// stack starts. False with a Python error set.
bool enter_wait(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames);
// One of this module's types: the slots both Connection and Listener fill.
PyTypeObject make_type(const char* name, Py_ssize_t size, const char* doc, destructor dealloc, PyMethodDef* methods,
                       PyGetSetDef* getset);

// Every live connection and listener, closed by the exit hook before the IO
// threads stop (an open socket's pending read would keep its thread busy).
void track(PyObject* object);
void untrack(PyObject* object);

}  // namespace shard::net
