// _net.Connection: one packet connection, seen from tasklets.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "bindings/arguments.h"
#include "core/clock.h"
#include "connection_waiter.h"
#include "net_types.h"
#include "shard/engine/await_completion.h"
#include "shard/engine/io_pool.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/waiters.h"

namespace shard::net {
namespace {

using engine::as_cfunction;
using netproto::Connection;
using netproto::FrameHeader;
using netproto::MessageKind;

// Py_buffers of the arguments, tuples and lists flattened (gather sends).
// A few live inline: a plain sendpacket() allocates nothing here.
class Buffers {
  static constexpr std::size_t kInline = 4;

 public:
  ~Buffers() {
    for (Py_buffer& view : views_) PyBuffer_Release(&view);
  }
  bool add(PyObject* item, int depth = 0) {
    if (PyTuple_Check(item) || PyList_Check(item)) {
      if (depth > 8) {
        PyErr_SetString(PyExc_ValueError, "send(): buffers nested too deep");
        return false;
      }
      PyObject* seq = PySequence_Fast(item, "send(): not a sequence");
      if (seq == nullptr) return false;
      bool ok = true;
      for (Py_ssize_t i = 0; ok && i < PySequence_Fast_GET_SIZE(seq); ++i) {
        ok = add(PySequence_Fast_GET_ITEM(seq, i), depth + 1);
      }
      Py_DECREF(seq);
      return ok;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(item, &view, PyBUF_SIMPLE) < 0) return false;
    views_.push_back(view);
    return true;
  }
  using Spans = boost::container::small_vector<std::span<const std::uint8_t>, kInline>;
  Spans spans() const {
    Spans out;
    for (const Py_buffer& v : views_) out.emplace_back(static_cast<const std::uint8_t*>(v.buf), v.len);
    return out;
  }
  std::size_t size() const {
    std::size_t n = 0;
    for (const Py_buffer& v : views_) n += v.len;
    return n;
  }

 private:
  boost::container::small_vector<Py_buffer, kInline> views_;
};

PyObject* do_send(ConnectionObject* self, Buffers& buffers, MessageKind kind) {
  Connection& connection = *self->connection;
  FrameHeader header;
  header.kind = kind;
  auto spans = buffers.spans();
  std::uint64_t seq = 0;
  switch (connection.send(header, {spans.data(), spans.size()}, &seq)) {
    case Connection::SendResult::kQueued:
      break;
    case Connection::SendResult::kTooLarge:
      return PyErr_Format(exceptions.too_large, "packet of %zu bytes over the limit of %zu", buffers.size(),
                          connection.max_payload());
    case Connection::SendResult::kBadHeader:
      return PyErr_Format(PyExc_ValueError, "bad packet kind %d", static_cast<int>(kind));
    case Connection::SendResult::kClosed:
    case Connection::SendResult::kBackpressure:
      return raise_closed(connection);
  }
  if (!self->blockingsend) Py_RETURN_NONE;  // errors surface on the next call
  std::error_code error = ConnectionWaiter::wait(
      self->waiter, self->connection,
      [seq](Connection& c, Connection::Notify notify) { return c.notify_sent(seq, std::move(notify)); }, 0);
  if (error) return engine::raise_wait_error(error, "send");
  if (connection.written_seq() < seq) return raise_closed(connection);
  Py_RETURN_NONE;
}

MessageKind parse_kind(PyObject* kind_obj, bool* ok) {
  *ok = true;
  if (kind_obj == nullptr || kind_obj == Py_None) return MessageKind::kNotification;
  long kind = PyLong_AsLong(kind_obj);
  if (kind == -1 && PyErr_Occurred()) {
    *ok = false;
    return MessageKind::kNotification;
  }
  if (kind < 1 || kind > netproto::kMaxMessageKind) {
    PyErr_Format(PyExc_ValueError, "packet kind %ld out of range 1..%d", kind, netproto::kMaxMessageKind);
    *ok = false;
  }
  return static_cast<MessageKind>(kind);
}

// sendpacket(data, kind=None): one packet; framing, compression and the write
// happen on the IO thread. With blockingsend, waits until it is written.
PyObject* sendpacket(PyObject* py_self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ConnectionObject*>(py_self);
  PyObject* parsed[2] = {nullptr, nullptr};
  if (!engine::parse_arguments("sendpacket", args, nargs, kwnames, {"data", "kind"}, 1, parsed)) return nullptr;
  bool ok;
  MessageKind kind = parse_kind(parsed[1], &ok);
  if (!ok) return nullptr;
  if (PyTuple_Check(parsed[0]) || PyList_Check(parsed[0])) {
    return PyErr_Format(PyExc_TypeError, "sendpacket() takes a bytes-like object; send() gathers");
  }
  Buffers buffers;
  if (!buffers.add(parsed[0])) return nullptr;
  if (self->blockingsend && !enter_wait(args, nargs, kwnames)) return nullptr;
  return do_send(self, buffers, kind);
}

// send(a, b, (c, d), ...): one packet gathered from every buffer, in order,
// copied once into the send queue (never joined in Python).
PyObject* send(PyObject* py_self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  auto* self = reinterpret_cast<ConnectionObject*>(py_self);
  if (kwnames != nullptr && PyTuple_GET_SIZE(kwnames) > 0) {
    return PyErr_Format(PyExc_TypeError, "send() takes no keyword arguments");
  }
  Buffers buffers;
  for (Py_ssize_t i = 0; i < nargs; ++i) {
    if (!buffers.add(args[i])) return nullptr;
  }
  if (self->blockingsend && !enter_wait(args, nargs, kwnames)) return nullptr;
  return do_send(self, buffers, MessageKind::kNotification);
}

// The next packet (a packet that already arrived is taken without waiting,
// else only this tasklet waits): its payload, or (kind, payload) when
// `with_kind` (a link carrying several message kinds dispatches on it).
PyObject* receive(PyObject* py_self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, const char* name,
                  bool with_kind) {
  auto* self = reinterpret_cast<ConnectionObject*>(py_self);
  PyObject* timeout_obj = nullptr;
  if (!engine::parse_arguments(name, args, nargs, kwnames, {"timeout"}, 0, &timeout_obj)) return nullptr;
  double timeout;
  if (!engine::parse_timeout(timeout_obj, &timeout)) return nullptr;
  const int64_t deadline = deadline_of(timeout);
  // No copy: the frame calling this holds `self`, which holds the connection.
  const std::shared_ptr<Connection>& conn = self->connection;
  for (;;) {
    // The bytes are made straight from the receive queue's buffer (no copy
    // in between, nothing allocated but them).
    PyObject* payload = nullptr;
    int kind = 0;
    bool closed = false;
    const bool taken = conn->receive(
        [&](const FrameHeader& header, std::span<const std::uint8_t> data) {
          payload =
              PyBytes_FromStringAndSize(reinterpret_cast<const char*>(data.data()), static_cast<Py_ssize_t>(data.size()));
          kind = static_cast<int>(header.kind);
        },
        &closed);
    if (taken) {
      if (!with_kind || payload == nullptr) return payload;
      return Py_BuildValue("(iN)", kind, payload);  // N: steals payload
    }
    if (closed) return raise_closed(*conn);
    if (!enter_wait(args, nargs, kwnames)) return nullptr;
    std::error_code error = ConnectionWaiter::wait(
        self->waiter, conn, [](Connection& c, Connection::Notify notify) { return c.notify_readable(std::move(notify)); },
        deadline);
    if (error) return engine::raise_wait_error(error, name);
  }
}

// recvpacket(timeout=None): the next packet's payload.
PyObject* recvpacket(PyObject* py_self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return receive(py_self, args, nargs, kwnames, "recvpacket", false);
}

// recvmessage(timeout=None): the next packet as (kind, payload).
PyObject* recvmessage(PyObject* py_self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return receive(py_self, args, nargs, kwnames, "recvmessage", true);
}

PyObject* close(PyObject* py_self, PyObject*) {
  reinterpret_cast<ConnectionObject*>(py_self)->connection->close();
  Py_RETURN_NONE;
}

PyObject* stats(PyObject* py_self, PyObject*) {
  Connection::Stats s = reinterpret_cast<ConnectionObject*>(py_self)->connection->stats();
  auto k = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:n,s:n}", "packets_in", k(s.packets_in), "packets_out",
                       k(s.packets_out), "bytes_in", k(s.bytes_in), "bytes_out", k(s.bytes_out), "writes",
                       k(s.writes), "native_packets", k(s.native_packets), "recv_queued",
                       static_cast<Py_ssize_t>(s.recv_queued), "send_queued_bytes",
                       static_cast<Py_ssize_t>(s.send_queued_bytes));
}

PyObject* get_close_reason(PyObject* py_self, void*) {
  Connection& c = *reinterpret_cast<ConnectionObject*>(py_self)->connection;
  if (!c.closed()) Py_RETURN_NONE;
  return PyUnicode_FromString(c.close_detail().c_str());
}

PyObject* get_peer(PyObject* py_self, void*) {
  Connection& c = *reinterpret_cast<ConnectionObject*>(py_self)->connection;
  return Py_BuildValue("(si)", c.remote_address().c_str(), static_cast<int>(c.remote_port()));
}

PyObject* get_negotiated(PyObject* py_self, void*) {
  const netproto::Negotiated& n = reinterpret_cast<ConnectionObject*>(py_self)->connection->negotiated();
  static constexpr const char* kCodecs[] = {"none", "snappy", "zlib"};
  static constexpr const char* kRoles[] = {"unknown", "client", "proxy", "sol"};
  const int role = n.peer_role >= 0 && n.peer_role <= 3 ? n.peer_role : 0;
  PyObject* tls = n.tls.empty() ? Py_NewRef(Py_None) : PyUnicode_FromString(n.tls.c_str());
  if (tls == nullptr) return nullptr;
  return Py_BuildValue("{s:I,s:s,s:I,s:N,s:I,s:I,s:I,s:s,s:I}", "version", n.version, "codec",
                       kCodecs[static_cast<int>(n.codec)], "compress_threshold", n.compress_threshold, "tls", tls,
                       "max_frame_bytes", n.limits.max_frame_bytes, "max_decompressed_bytes",
                       n.limits.max_decompressed_bytes, "heartbeat_interval_ms", n.heartbeat_interval_ms,
                       "peer_role", kRoles[role], "peer_node_id", n.peer_node_id);
}

PyObject* get_io_thread(PyObject* py_self, void*) {
  auto* self = reinterpret_cast<ConnectionObject*>(py_self);
  return PyLong_FromLong(engine::IoPool::instance().index_of(self->connection->context()));
}

PyObject* get_blockingsend(PyObject* py_self, void*) {
  return PyBool_FromLong(reinterpret_cast<ConnectionObject*>(py_self)->blockingsend);
}

int set_blockingsend(PyObject* py_self, PyObject* value, void*) {
  if (value == nullptr) {
    PyErr_SetString(PyExc_AttributeError, "cannot delete blockingsend");
    return -1;
  }
  int truth = PyObject_IsTrue(value);
  if (truth < 0) return -1;
  reinterpret_cast<ConnectionObject*>(py_self)->blockingsend = truth != 0;
  return 0;
}

void dealloc(PyObject* py_self) {
  auto* self = reinterpret_cast<ConnectionObject*>(py_self);
  untrack(py_self);
  if (self->connection) self->connection->close();  // its IO thread lets it go
  self->waiter.~shared_ptr();
  self->connection.~shared_ptr();
  self->context.~shared_ptr();
  Py_TYPE(py_self)->tp_free(py_self);
}

PyMethodDef methods[] = {
    {"sendpacket", as_cfunction<sendpacket>(), METH_FASTCALL | METH_KEYWORDS,
     "sendpacket(data, kind=None): queue one packet (framed, compressed, written on the IO thread)"},
    {"send", as_cfunction<send>(), METH_FASTCALL | METH_KEYWORDS,
     "send(a, b, (c, d), ...): one packet gathered from every buffer, never joined in Python"},
    {"recvpacket", as_cfunction<recvpacket>(), METH_FASTCALL | METH_KEYWORDS,
     "recvpacket(timeout=None): the next packet; only this tasklet waits"},
    {"recvmessage", as_cfunction<recvmessage>(), METH_FASTCALL | METH_KEYWORDS,
     "recvmessage(timeout=None): the next packet as (kind, payload); only this tasklet waits"},
    {"close", as_cfunction<close>(), METH_NOARGS, "close the connection (queued received packets stay readable)"},
    {"stats", as_cfunction<stats>(), METH_NOARGS, "counts of packets, bytes, writes, native packets, queues"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef getset[] = {
    {"blockingsend", engine::guarded<get_blockingsend>, engine::guarded<set_blockingsend>,
     "True (default): a send waits until written; False: it queues and returns, errors surface on the next call",
     nullptr},
    {"close_reason", engine::guarded<get_close_reason>, nullptr, "why it closed (None while open)", nullptr},
    {"peer", engine::guarded<get_peer>, nullptr, "(address, port) of the other end", nullptr},
    {"negotiated", engine::guarded<get_negotiated>, nullptr,
     "what the handshake agreed: version, codec, compress_threshold, tls ('TLSv1.3 <cipher>' or None), "
     "max_frame_bytes, max_decompressed_bytes, heartbeat_interval_ms, peer_role, peer_node_id",
     nullptr},
    {"io_thread", engine::guarded<get_io_thread>, nullptr,
     "which of the engine's IO threads serves it (0-based; -1 once they stopped)", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

PyTypeObject ConnectionType =
    make_type("_net.Connection", sizeof(ConnectionObject),
              "a packet connection on an IO thread (from _net.connect() or Listener.accept())",
              engine::guarded<dealloc>, methods, getset);

PyObject* wrap_connection(std::shared_ptr<boost::asio::io_context> context,
                          std::shared_ptr<netproto::Connection> connection) {
  auto* self = PyObject_New(ConnectionObject, &ConnectionType);
  if (self == nullptr) {
    connection->close();
    return nullptr;
  }
  new (&self->context) std::shared_ptr<boost::asio::io_context>(std::move(context));
  new (&self->connection) std::shared_ptr<netproto::Connection>(std::move(connection));
  new (&self->waiter) std::shared_ptr<ConnectionWaiter>();
  self->blockingsend = true;
  track(reinterpret_cast<PyObject*>(self));
  return reinterpret_cast<PyObject*>(self);
}

std::nullptr_t raise_closed(const netproto::Connection& connection) {
  using netproto::CloseReason;
  PyObject* type = exceptions.error;
  switch (connection.close_reason()) {
    case CloseReason::kPeerClosed: type = exceptions.peer_closed; break;
    case CloseReason::kIdleTimeout: type = exceptions.idle_timeout; break;
    case CloseReason::kBackpressure: type = exceptions.backpressure; break;
    case CloseReason::kTooLarge: type = exceptions.too_large; break;
    case CloseReason::kProtocolError: type = exceptions.protocol_error; break;
    default: break;
  }
  PyErr_SetString(type, connection.close_detail().c_str());
  return nullptr;
}

}  // namespace shard::net
