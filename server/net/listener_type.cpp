// _net.Listener: a listening socket; accept() parks only the calling tasklet.
#include <algorithm>
#include <cmath>

#include "bindings/arguments.h"
#include "core/clock.h"
#include "net_types.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/waiters.h"
#include "shard/netproto/native_handlers.h"
#include "wait_notify.h"

namespace shard::net {
namespace {

using engine::as_cfunction;

// accept(timeout=None): the next accepted connection.
PyObject* accept(PyObject* py_self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ListenerObject*>(py_self);
  PyObject* timeout_obj = nullptr;
  if (!engine::parse_arguments("accept", args, nargs, kwnames, {"timeout"}, 0, &timeout_obj)) return nullptr;
  double timeout;
  if (!engine::parse_timeout(timeout_obj, &timeout)) return nullptr;
  const int64_t deadline = deadline_of(timeout);
  auto listener = self->listener;
  for (;;) {
    if (netproto::Listener::Accepted accepted = listener->try_accept(); accepted.connection != nullptr) {
      return wrap_connection(accepted.context != nullptr ? std::move(accepted.context) : self->context,
                             std::move(accepted.connection));
    }
    if (listener->closed()) return PyErr_Format(exceptions.error, "accept() on a closed listener");
    if (!enter_wait(args, nargs, kwnames)) return nullptr;
    std::error_code error = wait_on(
        listener,
        [](netproto::Listener& l, netproto::Listener::Notify notify) { return l.notify_acceptable(std::move(notify)); },
        deadline);
    if (error) return engine::raise_wait_error(error, "accept");
  }
}

PyObject* close(PyObject* py_self, PyObject*) {
  reinterpret_cast<ListenerObject*>(py_self)->listener->close();
  Py_RETURN_NONE;
}

PyObject* stats(PyObject* py_self, PyObject*) {
  auto* self = reinterpret_cast<ListenerObject*>(py_self);
  netproto::Listener::Stats s = self->listener->stats();
  auto k = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  return Py_BuildValue("{s:K,s:K,s:K,s:K,s:n,s:K}", "accepted", k(s.accepted), "refused_per_address",
                       k(s.refused_per_address), "refused_pending", k(s.refused_pending), "handshake_failed",
                       k(s.handshake_failed), "open",
                       static_cast<Py_ssize_t>(s.open), "native_packets",
                       k(self->native != nullptr ? self->native->handled() : 0));
}

PyObject* get_port(PyObject* py_self, void*) {
  return PyLong_FromLong(reinterpret_cast<ListenerObject*>(py_self)->listener->port());
}

void dealloc(PyObject* py_self) {
  auto* self = reinterpret_cast<ListenerObject*>(py_self);
  untrack(py_self);
  if (self->listener) self->listener->close();
  self->native.~shared_ptr();
  self->listener.~shared_ptr();
  self->context.~shared_ptr();
  Py_TYPE(py_self)->tp_free(py_self);
}

PyMethodDef methods[] = {
    {"accept", as_cfunction<accept>(), METH_FASTCALL | METH_KEYWORDS,
     "accept(timeout=None): the next connection; only this tasklet waits"},
    {"close", as_cfunction<close>(), METH_NOARGS, "stop listening; connections not yet accepted are closed"},
    {"stats", as_cfunction<stats>(), METH_NOARGS,
     "accepted, refused_per_address, refused_pending, handshake_failed, open, native_packets"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef getset[] = {
    {"port", engine::guarded<get_port>, nullptr, "the port it listens on", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

PyTypeObject ListenerType = make_type("_net.Listener", sizeof(ListenerObject),
                                     "a listening socket on an IO thread (from _net.listen())",
                                     engine::guarded<dealloc>, methods, getset);

}  // namespace shard::net
