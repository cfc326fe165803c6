#define PY_SSIZE_T_CLEAN
// The _console module: the console's tasklet waits for parsed requests here
// (only it waits) and hands back answers; the IO thread does the rest.
#include "console_module.h"

#include <cstring>
#include <string>
#include <unordered_set>

#include "bindings/arguments.h"
#include "http_server.h"
#include "net_types.h"
#include "shard/engine/await_completion.h"
#include "shard/engine/io_pool.h"
#include "shard/engine/waiters.h"
#include "wait_notify.h"

namespace shard::console {
namespace {

namespace asio = boost::asio;
using engine::as_cfunction;

struct ServerObject {
  PyObject_HEAD
  std::shared_ptr<asio::io_context> context;  // first: outlives the server's sockets
  std::shared_ptr<HttpServer> server;
};

std::unordered_set<ServerObject*> live;  // GIL-protected: closed by the exit hook
extern PyTypeObject ServerType;

PyObject* make_request(HttpRequest& r) {
  PyObject* headers = PyList_New(0);
  if (headers == nullptr) return nullptr;
  for (const auto& [name, value] : r.headers) {
    // Header bytes are hostile: decoded leniently, never trusted as UTF-8.
    PyObject* pair = Py_BuildValue("(NN)", PyUnicode_DecodeLatin1(name.data(), name.size(), "replace"),
                                   PyUnicode_DecodeLatin1(value.data(), value.size(), "replace"));
    if (pair == nullptr || PyList_Append(headers, pair) < 0) {
      Py_XDECREF(pair);
      Py_DECREF(headers);
      return nullptr;
    }
    Py_DECREF(pair);
  }
  return Py_BuildValue("(KNNNy#NO)", static_cast<unsigned long long>(r.id),
                       PyUnicode_DecodeLatin1(r.method.data(), r.method.size(), "replace"),
                       PyUnicode_DecodeLatin1(r.target.data(), r.target.size(), "replace"), headers, r.body.data(),
                       static_cast<Py_ssize_t>(r.body.size()), PyUnicode_FromString(r.peer.c_str()),
                       r.websocket ? Py_True : Py_False);
}

// next_request(timeout=None): (id, method, target, [(name, value)], body, peer, websocket).
PyObject* next_request(PyObject* py_self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ServerObject*>(py_self);
  PyObject* timeout_obj = nullptr;
  if (!engine::parse_arguments("next_request", args, nargs, kwnames, {"timeout"}, 0, &timeout_obj)) return nullptr;
  double timeout;
  if (!engine::parse_timeout(timeout_obj, &timeout)) return nullptr;
  const int64_t deadline = net::deadline_of(timeout);
  auto server = self->server;
  for (;;) {
    if (auto request = server->try_next()) return make_request(*request);
    if (server->closed()) return PyErr_Format(PyExc_OSError, "next_request() on a closed console server");
    if (!net::enter_wait(args, nargs, kwnames)) return nullptr;
    std::error_code error = net::wait_on(
        server, [](HttpServer& s, HttpServer::Notify notify) { return s.notify_request(std::move(notify)); },
        deadline);
    if (error) return engine::raise_wait_error(error, "next_request");
  }
}

bool text_of(PyObject* object, const char* what, std::string* out) {
  Py_ssize_t size;
  const char* data = PyUnicode_AsUTF8AndSize(object, &size);
  if (data == nullptr) return false;
  out->assign(data, static_cast<std::size_t>(size));
  if (out->find_first_of("\r\n") != std::string::npos || out->find('\0') != std::string::npos) {
    PyErr_Format(PyExc_ValueError, "%s %R holds a line break or NUL", what, object);
    return false;
  }
  return true;
}

bool headers_of(PyObject* list, Headers* out) {
  if (list == nullptr || list == Py_None) return true;
  PyObject* seq = PySequence_Fast(list, "headers must be a sequence of (name, value)");
  if (seq == nullptr) return false;
  bool ok = true;
  for (Py_ssize_t i = 0; ok && i < PySequence_Fast_GET_SIZE(seq); ++i) {
    PyObject* item = PySequence_Fast_GET_ITEM(seq, i);
    std::string name, value;
    if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
      PyErr_SetString(PyExc_TypeError, "headers must be a sequence of (name, value) tuples");
      ok = false;
    } else {
      ok = text_of(PyTuple_GET_ITEM(item, 0), "header name", &name) &&
           text_of(PyTuple_GET_ITEM(item, 1), "header value", &value);
      if (ok) out->emplace_back(std::move(name), std::move(value));
    }
  }
  Py_DECREF(seq);
  return ok;
}

bool id_of(PyObject* object, std::uint64_t* out) {
  const unsigned long long id = PyLong_AsUnsignedLongLong(object);
  if (id == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return false;
  *out = id;
  return true;
}

// respond(id, status, headers, body): the answer to request `id` (bytes or str body).
PyObject* respond(PyObject* py_self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ServerObject*>(py_self);
  PyObject* p[4] = {};
  if (!engine::parse_arguments("respond", args, nargs, kwnames, {"id", "status", "headers", "body"}, 2, p)) {
    return nullptr;
  }
  HttpResponse response;
  std::uint64_t id;
  if (!id_of(p[0], &id)) return nullptr;
  const long status = PyLong_AsLong(p[1]);
  if (status == -1 && PyErr_Occurred()) return nullptr;
  if (status < 100 || status > 599) return PyErr_Format(PyExc_ValueError, "status %ld is not 100..599", status);
  response.status = static_cast<unsigned>(status);
  if (!headers_of(p[2], &response.headers)) return nullptr;
  if (p[3] != nullptr && p[3] != Py_None) {
    if (PyUnicode_Check(p[3])) {
      Py_ssize_t size;
      const char* data = PyUnicode_AsUTF8AndSize(p[3], &size);
      if (data == nullptr) return nullptr;
      response.body.assign(data, static_cast<std::size_t>(size));
    } else {
      Py_buffer view;
      if (PyObject_GetBuffer(p[3], &view, PyBUF_SIMPLE) < 0) return nullptr;
      response.body.assign(static_cast<const char*>(view.buf), static_cast<std::size_t>(view.len));
      PyBuffer_Release(&view);
    }
  }
  self->server->respond(id, std::move(response));
  Py_RETURN_NONE;
}

// upgrade(id, headers=None): accept request `id` as a WebSocket.
PyObject* upgrade(PyObject* py_self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ServerObject*>(py_self);
  PyObject* p[2] = {};
  if (!engine::parse_arguments("upgrade", args, nargs, kwnames, {"id", "headers"}, 1, p)) return nullptr;
  std::uint64_t id;
  Headers headers;
  if (!id_of(p[0], &id) || !headers_of(p[1], &headers)) return nullptr;
  self->server->upgrade(id, std::move(headers));
  Py_RETURN_NONE;
}

PyObject* broadcast(PyObject* py_self, PyObject* text) {
  Py_ssize_t size;
  const char* data = PyUnicode_AsUTF8AndSize(text, &size);
  if (data == nullptr) return nullptr;
  reinterpret_cast<ServerObject*>(py_self)->server->broadcast(std::string(data, static_cast<std::size_t>(size)));
  Py_RETURN_NONE;
}

PyObject* close(PyObject* py_self, PyObject*) {
  reinterpret_cast<ServerObject*>(py_self)->server->close();
  Py_RETURN_NONE;
}

PyObject* stats(PyObject* py_self, PyObject*) {
  const ServerStats s = reinterpret_cast<ServerObject*>(py_self)->server->stats();
  auto k = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:n,s:n}", "connections", k(s.connections), "refused",
                       k(s.refused), "requests", k(s.requests), "busy", k(s.busy), "bad_requests",
                       k(s.bad_requests), "ws_dropped", k(s.ws_dropped), "bytes_in", k(s.bytes_in), "bytes_out",
                       k(s.bytes_out), "open", static_cast<Py_ssize_t>(s.open), "websockets",
                       static_cast<Py_ssize_t>(s.websockets));
}

PyObject* get_port(PyObject* py_self, void*) {
  return PyLong_FromLong(reinterpret_cast<ServerObject*>(py_self)->server->port());
}

void dealloc(PyObject* py_self) {
  auto* self = reinterpret_cast<ServerObject*>(py_self);
  live.erase(self);
  if (self->server) self->server->close();
  self->server.~shared_ptr();
  self->context.~shared_ptr();
  Py_TYPE(py_self)->tp_free(py_self);
}

size_t size_arg(PyObject* value, std::size_t fallback) {
  if (value == nullptr || value == Py_None) return fallback;
  const Py_ssize_t v = PyNumber_AsSsize_t(value, PyExc_OverflowError);
  return v < 1 ? 0 : static_cast<std::size_t>(v);
}

// serve(host, port, *, max_body=65536, max_connections=64, idle_timeout=30, tls_cert=None, tls_key=None)
PyObject* serve(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* p[7] = {};
  if (!engine::parse_arguments("serve", args, nargs, kwnames,
                               {"host", "port", "max_body", "max_connections", "idle_timeout", "tls_cert", "tls_key"},
                               2, p)) {
    return nullptr;
  }
  const char* host = PyUnicode_AsUTF8(p[0]);
  if (host == nullptr) return nullptr;
  const long port = PyLong_AsLong(p[1]);
  if (port == -1 && PyErr_Occurred()) return nullptr;
  if (port < 0 || port > 65535) return PyErr_Format(PyExc_OverflowError, "port must be 0-65535, not %ld", port);
  boost::system::error_code bad;
  const auto address = asio::ip::make_address(host, bad);
  if (bad) return PyErr_Format(PyExc_ValueError, "%R is not a numeric IP address", p[0]);
  ServerConfig config;
  config.max_body_bytes = size_arg(p[2], config.max_body_bytes);
  config.max_connections = size_arg(p[3], config.max_connections);
  if (PyErr_Occurred()) return nullptr;
  if (config.max_body_bytes == 0 || config.max_connections == 0) {
    return PyErr_Format(PyExc_ValueError, "max_body and max_connections must be at least 1");
  }
  double idle;
  if (!engine::parse_timeout(p[4], &idle)) return nullptr;
  if (idle > 0) config.idle = std::chrono::milliseconds(static_cast<long long>(idle * 1e3));
  for (int i : {5, 6}) {
    if (p[i] == nullptr || p[i] == Py_None) continue;
    const char* path = PyUnicode_AsUTF8(p[i]);
    if (path == nullptr) return nullptr;
    (i == 5 ? config.tls_cert : config.tls_key) = path;
  }
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return PyErr_Format(PyExc_ValueError, "TLS needs both tls_cert and tls_key");
  }
  auto context = engine::IoPool::instance().next_context();
  if (context == nullptr) return engine::raise_wait_error(engine::WaitError::kStopped, "serve");
  std::shared_ptr<HttpServer> server;
  try {
    server = HttpServer::start(context, {address, static_cast<unsigned short>(port)}, config);
  } catch (const boost::system::system_error& e) {
    if (config.tls_cert.empty()) {
      return PyErr_Format(PyExc_OSError, "console: cannot serve on %s:%ld: %s", host, port, e.code().message().c_str());
    }
    // OpenSSL's own text says little ("asio.ssl error"): the files are the likely cause.
    return PyErr_Format(PyExc_OSError, "console: cannot serve on %s:%ld with TLS (certificate %s, key %s): %s", host,
                        port, config.tls_cert.c_str(), config.tls_key.c_str(), e.what());
  }
  auto* self = PyObject_New(ServerObject, &ServerType);
  if (self == nullptr) {
    server->close();
    return nullptr;
  }
  new (&self->context) std::shared_ptr<asio::io_context>(std::move(context));
  new (&self->server) std::shared_ptr<HttpServer>(std::move(server));
  live.insert(self);
  return reinterpret_cast<PyObject*>(self);
}

// At exit, before the IO threads stop: open sockets would keep them busy.
PyObject* close_all(PyObject*, PyObject*) {
  for (ServerObject* self : live) self->server->close();
  Py_RETURN_NONE;
}

PyMethodDef server_methods[] = {
    {"next_request", as_cfunction<next_request>(), METH_FASTCALL | METH_KEYWORDS,
     "next_request(timeout=None): (id, method, target, headers, body, peer, websocket); only this tasklet waits"},
    {"respond", as_cfunction<respond>(), METH_FASTCALL | METH_KEYWORDS,
     "respond(id, status, headers=None, body=None): answer request id"},
    {"upgrade", as_cfunction<upgrade>(), METH_FASTCALL | METH_KEYWORDS,
     "upgrade(id, headers=None): accept request id as a WebSocket"},
    {"broadcast", as_cfunction<broadcast>(), METH_O, "broadcast(text): push text to every open WebSocket"},
    {"close", as_cfunction<close>(), METH_NOARGS, "stop listening and close every connection"},
    {"stats", as_cfunction<stats>(), METH_NOARGS,
     "connections, refused, requests, busy, bad_requests, ws_dropped, bytes_in, bytes_out, open, websockets"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef server_getset[] = {
    {"port", engine::guarded<get_port>, nullptr, "the port it listens on", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyTypeObject ServerType = net::make_type("_console.Server", sizeof(ServerObject),
                                         "the console's HTTP server on an IO thread (from _console.serve())",
                                         engine::guarded<dealloc>, server_methods, server_getset);

PyMethodDef module_methods[] = {
    {"serve", as_cfunction<serve>(), METH_FASTCALL | METH_KEYWORDS,
     "serve(host, port, *, max_body=65536, max_connections=64, idle_timeout=30, tls_cert=None, tls_key=None): "
     "a Server (TLS with a PEM certificate chain and key)"},
    {"_close_all", as_cfunction<close_all>(), METH_NOARGS, "close every server (the exit hook)"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_console", "the admin console's HTTP server", -1, module_methods};

}  // namespace
}  // namespace shard::console

extern "C" PyObject* PyInit__console() {
  using namespace shard::console;
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  bool ok = shard::engine::add_type(module, "Server", &ServerType) == 0;
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
