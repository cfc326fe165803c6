// The _net module: listen(), connect(), the exceptions, and closing what is
// still open at exit.
#include "net_module.h"

#include <cmath>
#include <string>
#include <unordered_set>

#include "bindings/arguments.h"
#include "core/clock.h"
#include "net_types.h"
#include "shard/engine/await_completion.h"
#include "shard/engine/io_pool.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/waiters.h"
#include "shard/netproto/native_handlers.h"

namespace shard::net {

Exceptions exceptions;

namespace {

namespace asio = boost::asio;
using engine::as_cfunction;

std::unordered_set<PyObject*> live;  // GIL-protected

// Keyword arguments shared by listen() and connect(), in this order after
// their own.
constexpr int kConfigArgs = 4;  // idle_timeout, max_send_bytes, max_recv_packets, max_packet

bool size_arg(PyObject* value, const char* name, std::size_t min, std::size_t max, std::size_t* out) {
  if (value == nullptr || value == Py_None) return true;
  const unsigned long long v = PyLong_AsUnsignedLongLong(value);
  if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return false;
  if (v < min || v > max) {
    PyErr_Format(PyExc_ValueError, "%s=%llu out of range %zu..%zu", name, v, min, max);
    return false;
  }
  *out = static_cast<std::size_t>(v);
  return true;
}

bool parse_config(PyObject* const* values, netproto::ConnectionConfig& config) {
  double idle;
  if (!engine::parse_timeout(values[0], &idle)) return false;
  if (idle >= 0) config.idle_timeout = std::chrono::milliseconds(std::max<long long>(1, std::llround(idle * 1e3)));
  if (!size_arg(values[1], "max_send_bytes", 1, std::size_t{1} << 40, &config.max_send_bytes)) return false;
  if (!size_arg(values[2], "max_recv_packets", 1, std::size_t{1} << 30, &config.max_recv_packets)) return false;
  std::size_t max_packet = 0;
  if (!size_arg(values[3], "max_packet", 1, (std::size_t{1} << 30), &max_packet)) return false;
  if (max_packet != 0) {
    // Both sides' limits: a payload of max_packet bytes goes plain.
    netproto::Limits limits;
    limits.max_decompressed_bytes = static_cast<std::uint32_t>(max_packet);
    limits.max_frame_bytes = static_cast<std::uint32_t>(max_packet + netproto::kHeaderBytes);
    config.decoder.limits = config.encoder.limits = limits;
  }
  return true;
}

bool endpoint_of(PyObject* host_obj, PyObject* port_obj, asio::ip::tcp::endpoint* out) {
  const char* host = PyUnicode_AsUTF8(host_obj);
  if (host == nullptr) return false;
  long port = PyLong_AsLong(port_obj);
  if (port == -1 && PyErr_Occurred()) return false;
  if (port < 0 || port > 65535) {
    PyErr_Format(PyExc_OverflowError, "port must be 0-65535, not %ld", port);
    return false;
  }
  boost::system::error_code error;
  auto address = asio::ip::make_address(host, error);
  if (error) {
    PyErr_Format(PyExc_ValueError, "%R is not a numeric IP address (resolve names with _engine.io_resolve)", host_obj);
    return false;
  }
  *out = {address, static_cast<unsigned short>(port)};
  return true;
}

// native= of listen() and connect(): C++ handlers from another module (a
// capsule, e.g. _movement.handlers()) copied into `into`: their kinds are
// handled on the IO thread and never queued for Python. False with an error set.
bool add_native(PyObject* capsule, netproto::NativeHandlers& into) {
  if (capsule == nullptr || capsule == Py_None) return true;
  auto* from = static_cast<netproto::NativeHandlers*>(PyCapsule_GetPointer(capsule, kNativeHandlersCapsule));
  if (from == nullptr) return false;
  for (int kind = 1; kind <= netproto::kMaxMessageKind; ++kind) {
    if (const auto* handler = from->find(static_cast<netproto::MessageKind>(kind))) {
      into.set(static_cast<netproto::MessageKind>(kind), *handler);
    }
  }
  return true;
}

// listen(host, port, *, max_per_address, idle_timeout, max_send_bytes,
//        max_recv_packets, max_packet, native_count_kinds, codec,
//        compress_threshold, tls_cert, tls_key, tls_required, handshake_timeout,
//        role, node_id, native)
PyObject* listen(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* p[8 + kServerHandshakeArgs + 1] = {};
  if (!engine::parse_arguments("listen", args, nargs, kwnames,
                               {"host", "port", "max_per_address", "idle_timeout", "max_send_bytes",
                                "max_recv_packets", "max_packet", "native_count_kinds", "codec", "compress_threshold",
                                "tls_cert", "tls_key", "tls_required", "handshake_timeout", "role", "node_id",
                                "native"},
                               2, p)) {
    return nullptr;
  }
  asio::ip::tcp::endpoint endpoint;
  if (!endpoint_of(p[0], p[1], &endpoint)) return nullptr;
  netproto::ListenerConfig config;
  if (!size_arg(p[2], "max_per_address", 1, std::size_t{1} << 30, &config.max_per_address)) return nullptr;
  if (!parse_config(p + 3, config.connection)) return nullptr;
  config.handshake = server_handshake(p + 8, config.connection.decoder.limits);
  if (config.handshake == nullptr) return nullptr;
  // Accepted connections go to the IO threads in turn, not all to the listener's.
  // Called on the listener's IO thread only: its own turn needs no lock.
  config.connection_context = [turn = std::size_t{0}]() mutable {
    return engine::IoPool::instance().context_at(turn++);
  };
  auto native = std::make_shared<netproto::NativeHandlers>();
  netproto::answer_heartbeats(*native);
  if (p[7] != nullptr && p[7] != Py_None) {
    // A test hook for the native path: packets of these kinds are counted on
    // the IO thread and never reach Python.
    PyObject* kinds = PySequence_Fast(p[7], "native_count_kinds must be a sequence of packet kinds");
    if (kinds == nullptr) return nullptr;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(kinds); ++i) {
      long kind = PyLong_AsLong(PySequence_Fast_GET_ITEM(kinds, i));
      if (kind < 1 || kind > netproto::kMaxMessageKind) {
        Py_DECREF(kinds);
        if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "packet kind %ld out of range", kind);
        return nullptr;
      }
      native->set(static_cast<netproto::MessageKind>(kind), [](netproto::Connection&, const netproto::Frame&) {});
    }
    Py_DECREF(kinds);
  }
  if (!add_native(p[8 + kServerHandshakeArgs], *native)) return nullptr;
  auto context = engine::IoPool::instance().next_context();
  if (context == nullptr) return engine::raise_wait_error(engine::WaitError::kStopped, "listen");
  std::error_code error;
  auto listener = netproto::Listener::create(*context, endpoint, config, native, error);
  if (listener == nullptr) return engine::raise_wait_error(error, "listen");
  listener->start();
  auto* self = PyObject_New(ListenerObject, &ListenerType);
  if (self == nullptr) {
    listener->close();
    return nullptr;
  }
  new (&self->context) std::shared_ptr<asio::io_context>(std::move(context));
  new (&self->listener) std::shared_ptr<netproto::Listener>(std::move(listener));
  new (&self->native) std::shared_ptr<netproto::NativeHandlers>(std::move(native));
  track(reinterpret_cast<PyObject*>(self));
  return reinterpret_cast<PyObject*>(self);
}

// connect(host, port, timeout=None, *, idle_timeout, ..., codec, tls, tls_ca,
// tls_verify, tls_server_name, handshake_timeout, role, node_id): only this tasklet waits,
// for the TCP connection and then the handshake (on the IO thread).
PyObject* connect(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* p[3 + kConfigArgs + kClientHandshakeArgs + 1] = {};
  if (!engine::parse_arguments("connect", args, nargs, kwnames,
                               {"host", "port", "timeout", "idle_timeout", "max_send_bytes", "max_recv_packets",
                                "max_packet", "codec", "tls", "tls_ca", "tls_verify", "tls_server_name",
                                "handshake_timeout", "role", "node_id", "native"},
                               2, p)) {
    return nullptr;
  }
  std::shared_ptr<const netproto::NativeHandlers> native = heartbeat_handlers();
  if (PyObject* extra = p[3 + kConfigArgs + kClientHandshakeArgs]; extra != nullptr && extra != Py_None) {
    auto own = std::make_shared<netproto::NativeHandlers>();
    netproto::answer_heartbeats(*own);
    if (!add_native(extra, *own)) return nullptr;
    native = std::move(own);
  }
  asio::ip::tcp::endpoint endpoint;
  if (!endpoint_of(p[0], p[1], &endpoint)) return nullptr;
  double timeout;
  if (!engine::parse_timeout(p[2], &timeout)) return nullptr;
  netproto::ConnectionConfig config;
  if (!parse_config(p + 3, config)) return nullptr;
  auto handshake = client_handshake(p + 3 + kConfigArgs, p[0], config.decoder.limits);
  if (handshake == nullptr) return nullptr;
  if (!enter_wait(args, nargs, kwnames)) return nullptr;

  auto context = engine::IoPool::instance().next_context();
  if (context == nullptr) return engine::raise_wait_error(engine::WaitError::kStopped, "connect");
  struct Dial {  // shared by the tasklet, the handlers and cancel()
    explicit Dial(std::shared_ptr<asio::io_context> c) : context(std::move(c)), socket(*context) {}
    std::shared_ptr<asio::io_context> context;
    asio::ip::tcp::socket socket;
    // On the context's thread until the wait ends, then the tasklet's.
    bool cancelled = false;
    std::shared_ptr<netproto::Handshake> handshake;
    netproto::Handshaken result;
  };
  auto dial = std::make_shared<Dial>(context);
  auto start = [dial, endpoint, handshake](engine::Completer done) {
    asio::post(*dial->context, [dial, endpoint, handshake, done] {
      if (dial->cancelled) return done(std::make_error_code(std::errc::operation_canceled));
      dial->socket.async_connect(endpoint, [dial, handshake, done](const boost::system::error_code& error) {
        if (error) return done(engine::to_error_code(error));
        dial->handshake = netproto::Handshake::connect(
            std::move(dial->socket), handshake, [dial, done](netproto::Handshaken result) {
              const bool ok = result.stream.has_value();
              dial->result = std::move(result);
              done(ok ? std::error_code{} : std::make_error_code(std::errc::protocol_error));
            });
      });
    });
  };
  auto cancel = [dial] {
    asio::post(*dial->context, [dial] {
      dial->cancelled = true;
      boost::system::error_code ignored;
      dial->socket.close(ignored);
      if (dial->handshake) dial->handshake->cancel();
    });
  };
  if (std::error_code error = engine::await_completion(start, cancel, deadline_of(timeout))) {
    if (!dial->result.error.empty() && error == std::errc::protocol_error) {
      PyErr_SetString(exceptions.handshake_failed, dial->result.error.c_str());
      return nullptr;
    }
    return engine::raise_wait_error(error, "connect");
  }
  configure(config, dial->result.negotiated);
  auto connection = netproto::Connection::create(std::move(*dial->result.stream), std::move(config),
                                                 std::move(native));
  connection->start();
  return wrap_connection(std::move(context), std::move(connection));
}

// At exit, before the IO threads stop: every socket closed, so their reads
// end and the threads run out of work.
PyObject* close_all(PyObject*, PyObject*) {
  for (PyObject* object : live) {
    if (Py_IS_TYPE(object, &ConnectionType)) {
      reinterpret_cast<ConnectionObject*>(object)->connection->close();
    } else {
      reinterpret_cast<ListenerObject*>(object)->listener->close();
    }
  }
  Py_RETURN_NONE;
}

PyObject* counts(PyObject*, PyObject*) {
  return Py_BuildValue("{s:n,s:n,s:n}", "connections", static_cast<Py_ssize_t>(netproto::Connection::instances()),
                       "listeners", static_cast<Py_ssize_t>(netproto::Listener::instances()), "objects",
                       static_cast<Py_ssize_t>(live.size()));
}

PyObject* totals(PyObject*, PyObject*) {
  const netproto::Connection::Totals t = netproto::Connection::totals();
  return Py_BuildValue("{s:K,s:K,s:K,s:K}", "packets_in", static_cast<unsigned long long>(t.packets_in),
                       "packets_out", static_cast<unsigned long long>(t.packets_out), "bytes_in",
                       static_cast<unsigned long long>(t.bytes_in), "bytes_out",
                       static_cast<unsigned long long>(t.bytes_out));
}

PyMethodDef module_methods[] = {
    {"_counts", as_cfunction<counts>(), METH_NOARGS,
     "C++ connections and listeners alive, Python objects wrapping them (the leak check)"},
    {"totals", as_cfunction<totals>(), METH_NOARGS,
     "totals() -> {packets_in, packets_out, bytes_in, bytes_out}: every connection of this process "
     "together since it started, closed ones included (bytes as on the wire; native packets too)"},
    {"listen", as_cfunction<listen>(), METH_FASTCALL | METH_KEYWORDS,
     "listen(host, port, *, max_per_address=256, idle_timeout=None, max_send_bytes=16 MiB, "
     "max_recv_packets=4096, max_packet=None, native_count_kinds=None, codec=('snappy', 'zlib'), "
     "compress_threshold=512, tls_cert=None, tls_key=None, tls_required=None, handshake_timeout=10.0, "
     "role='proxy', node_id=0, native=None) -> Listener\n\n"
     "Each accepted connection first runs the handshake on the IO thread (docs/protocol.md): codec is the "
     "server's preference ('none', a name or a sequence), compress_threshold the smallest payload compressed; "
     "tls_cert/tls_key (PEM files) enable TLS (1.2 at least, 1.3 preferred), and then plain clients are "
     "refused unless tls_required=False. role ('client', 'proxy', 'sol') and node_id say who listens "
     "(Connection.negotiated shows the peer's). native: C++ handlers of packet kinds (a capsule such as "
     "_movement.handlers()) run on the IO thread; those packets never reach Python. A failed handshake is logged and counted "
     "(stats()['handshake_failed']); accept() never returns that connection."},
    {"connect", as_cfunction<connect>(), METH_FASTCALL | METH_KEYWORDS,
     "connect(host, port, timeout=None, *, idle_timeout=None, max_send_bytes=16 MiB, max_recv_packets=4096, "
     "max_packet=None, codec=('snappy', 'zlib'), tls=False, tls_ca=None, tls_verify=True, tls_server_name=None, "
     "handshake_timeout=10.0, role='client', node_id=0, native=None) -> Connection\n\n"
     "Only this tasklet waits, for TCP and then the handshake (on the IO thread). codec: the codecs offered. "
     "tls=True: TLS is required (a server without it fails the handshake); the server's certificate must chain "
     "to tls_ca (PEM; None: the system's CAs) and name tls_server_name (default: host) unless "
     "tls_verify=False (development only). role ('client', 'proxy', 'sol') and node_id say who dials. "
     "native: C++ handlers of packet kinds (a capsule such as _movement.proxy_link_handlers()). "
     "A failed handshake raises _net.HandshakeFailed with the reason; "
     "timeout= covers both steps (TimeoutError)."},
    {"_close_all", as_cfunction<close_all>(), METH_NOARGS, "close every connection and listener (the exit hook)"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_net",
                          "Packet connections on the engine's IO threads; waits block only the calling tasklet.", -1,
                          module_methods};

PyObject* new_exception(PyObject* module, const char* name, PyObject* bases, const char* doc) {
  std::string qualified = std::string("_net.") + name;
  PyObject* type = PyErr_NewExceptionWithDoc(qualified.c_str(), doc, bases, nullptr);
  if (type == nullptr || PyModule_AddObjectRef(module, name, type) < 0) return nullptr;
  return type;  // the module and this reference keep it
}

PyObject* init() {
  if (PyType_Ready(&ConnectionType) < 0 || PyType_Ready(&ListenerType) < 0) return nullptr;
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  bool ok = PyModule_AddObjectRef(module, "Connection", reinterpret_cast<PyObject*>(&ConnectionType)) == 0 &&
            PyModule_AddObjectRef(module, "Listener", reinterpret_cast<PyObject*>(&ListenerType)) == 0 &&
            PyModule_AddIntConstant(module, "MOVEMENT", static_cast<int>(netproto::MessageKind::kMovement)) == 0 &&
            PyModule_AddIntConstant(module, "NOTIFICATION",
                                    static_cast<int>(netproto::MessageKind::kNotification)) == 0;
  if (ok && exceptions.error == nullptr) {
    ok = (exceptions.error = new_exception(module, "error", PyExc_OSError, "a packet connection failed")) &&
         (exceptions.peer_closed = new_exception(module, "PeerClosed", exceptions.error, "the peer closed")) &&
         (exceptions.protocol_error =
              new_exception(module, "ProtocolError", exceptions.error, "the peer broke the framing rules")) &&
         (exceptions.too_large = new_exception(module, "TooLarge", exceptions.error, "a packet over the limit")) &&
         (exceptions.backpressure = new_exception(module, "Backpressure", exceptions.error,
                                                  "the send queue passed its limit: the peer does not read")) &&
         (exceptions.handshake_failed = new_exception(
              module, "HandshakeFailed", exceptions.error,
              "the connection's handshake failed (refused, garbage, TLS, timed out); the text says why"));
    PyObject* bases = ok ? PyTuple_Pack(2, exceptions.error, PyExc_TimeoutError) : nullptr;
    ok = bases != nullptr && (exceptions.idle_timeout = new_exception(module, "IdleTimeout", bases,
                                                                      "nothing received for idle_timeout"));
    Py_XDECREF(bases);
  } else if (ok) {
    ok = PyModule_AddObjectRef(module, "error", exceptions.error) == 0 &&
         PyModule_AddObjectRef(module, "PeerClosed", exceptions.peer_closed) == 0 &&
         PyModule_AddObjectRef(module, "ProtocolError", exceptions.protocol_error) == 0 &&
         PyModule_AddObjectRef(module, "TooLarge", exceptions.too_large) == 0 &&
         PyModule_AddObjectRef(module, "Backpressure", exceptions.backpressure) == 0 &&
         PyModule_AddObjectRef(module, "IdleTimeout", exceptions.idle_timeout) == 0 &&
         PyModule_AddObjectRef(module, "HandshakeFailed", exceptions.handshake_failed) == 0;
  }
  if (ok) {
    // atexit is LIFO: registered after the engine's IO stop, this runs first.
    PyObject* atexit = PyImport_ImportModule("atexit");
    PyObject* hook = atexit != nullptr ? PyObject_GetAttrString(module, "_close_all") : nullptr;
    PyObject* result = hook != nullptr ? PyObject_CallMethod(atexit, "register", "O", hook) : nullptr;
    ok = result != nullptr;
    Py_XDECREF(result);
    Py_XDECREF(hook);
    Py_XDECREF(atexit);
  }
  if (!ok) Py_CLEAR(module);
  return module;
}

}  // namespace

int64_t deadline_of(double timeout) {
  return timeout >= 0 ? engine::now_ns() + std::max<int64_t>(1, std::llround(timeout * 1e9)) : 0;
}

bool enter_wait(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  engine::Scheduler* sched = engine::Scheduler::current_or_create();
  if (sched == nullptr) return false;
  sched->set_call_sp(engine::stack_top(args, nargs, kwnames));
  return true;
}

PyTypeObject make_type(const char* name, Py_ssize_t size, const char* doc, destructor dealloc, PyMethodDef* methods,
                       PyGetSetDef* getset) {
  PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
  t.tp_name = name;
  t.tp_basicsize = size;
  t.tp_flags = Py_TPFLAGS_DEFAULT;
  t.tp_doc = doc;
  t.tp_dealloc = dealloc;
  t.tp_methods = methods;
  t.tp_getset = getset;
  return t;
}

void track(PyObject* object) { live.insert(object); }
void untrack(PyObject* object) { live.erase(object); }

}  // namespace shard::net

extern "C" PyObject* PyInit__net() { return shard::engine::guarded<shard::net::init>(); }
