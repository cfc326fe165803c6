#pragma once
// What the _net module's files share: the Python types wrapping netproto's
// Connection and Listener, the exceptions, and the helpers of their waits.

#include <Python.h>

#include <cstdint>
#include <memory>

#include "shard/engine/asio.h"
#include "shard/netproto/connection.h"
#include "shard/netproto/handshake.h"
#include "shard/netproto/heartbeat.h"
#include "shard/netproto/listener.h"
#include "shard/netproto/native_handlers.h"

namespace shard::net {

class ConnectionWaiter;

// _net.error (an OSError) and its kinds; set by the module's init.
struct Exceptions {
  PyObject* error = nullptr;
  PyObject* peer_closed = nullptr;
  PyObject* protocol_error = nullptr;
  PyObject* too_large = nullptr;
  PyObject* backpressure = nullptr;
  PyObject* idle_timeout = nullptr;  // also a TimeoutError
  PyObject* handshake_failed = nullptr;
};
extern Exceptions exceptions;

// Raises the exception for a closed connection's reason; returns null.
std::nullptr_t raise_closed(const netproto::Connection& connection);

struct ConnectionObject {
  PyObject_HEAD
  // The context first: the connection (its socket) is destroyed before it.
  std::shared_ptr<boost::asio::io_context> context;
  std::shared_ptr<netproto::Connection> connection;
  std::shared_ptr<ConnectionWaiter> waiter;  // kept between waits (connection_waiter.h)
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
  std::shared_ptr<netproto::NativeHandlers> native;  // heartbeats, and native_count_kinds
};
extern PyTypeObject ListenerType;

// The capsule name of a NativeHandlers table that listen(native=...) copies
// into its listener's (e.g. _movement.handlers()).
inline constexpr const char* kNativeHandlersCapsule = "shard.netproto.NativeHandlers";

// The handshake's keyword arguments (handshake_args.cpp), null with an error
// set. Server: codec, compress_threshold, tls_cert, tls_key, tls_required,
// handshake_timeout, role, node_id. Client: codec, tls, tls_ca, tls_verify,
// tls_server_name, handshake_timeout, role, node_id; `host` is the name
// checked against the certificate unless tls_server_name says otherwise.
inline constexpr int kServerHandshakeArgs = 8;
inline constexpr int kClientHandshakeArgs = 8;
std::shared_ptr<const netproto::ServerHandshake> server_handshake(PyObject* const* values,
                                                                  const netproto::Limits& limits);
std::shared_ptr<const netproto::ClientHandshake> client_handshake(PyObject* const* values, PyObject* host,
                                                                  const netproto::Limits& limits);
// The handlers every connection has: heartbeats answered on the IO thread.
std::shared_ptr<const netproto::NativeHandlers> heartbeat_handlers();
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
