// The keyword arguments of listen() and connect() that configure the
// handshake: which codecs, the compression threshold, TLS, its timeout.
// OpenSSL contexts are made here, once per listener or connect call, so a
// missing certificate is a ValueError at the call, not a failed handshake later.
#include <cmath>
#include <string>

#include "bindings/arguments.h"
#include "net_types.h"
#include "shard/engine/waiters.h"

namespace shard::net {
namespace {

using wire_role = shard::wire::PeerRole;

bool codec_of(PyObject* name_obj, std::vector<netproto::Codec>& out) {
  const char* name = PyUnicode_AsUTF8(name_obj);
  if (name == nullptr) return false;
  const std::string codec = name;
  if (codec == "snappy") {
    out.push_back(netproto::Codec::kSnappy);
  } else if (codec == "zlib") {
    out.push_back(netproto::Codec::kZlib);
  } else if (codec != "none") {
    PyErr_Format(PyExc_ValueError, "codec %R: not 'snappy', 'zlib' or 'none'", name_obj);
    return false;
  }
  return true;
}

// None: snappy, then zlib; "snappy": that one; ("zlib", "snappy"): in that order.
bool parse_codecs(PyObject* value, std::vector<netproto::Codec>& out) {
  if (value == nullptr || value == Py_None) {
    out = {netproto::Codec::kSnappy, netproto::Codec::kZlib};
    return true;
  }
  out.clear();
  if (PyUnicode_Check(value)) return codec_of(value, out);
  PyObject* seq = PySequence_Fast(value, "codec must be a name or a sequence of names");
  if (seq == nullptr) return false;
  bool ok = true;
  for (Py_ssize_t i = 0; ok && i < PySequence_Fast_GET_SIZE(seq); ++i) {
    ok = codec_of(PySequence_Fast_GET_ITEM(seq, i), out);
  }
  Py_DECREF(seq);
  return ok;
}

bool timeout_ms(PyObject* value, std::chrono::milliseconds& out) {
  double seconds;
  if (!engine::parse_timeout(value, &seconds)) return false;
  if (seconds >= 0) out = std::chrono::milliseconds(std::max<long long>(1, std::llround(seconds * 1e3)));
  return true;
}

// A path argument: None gives "", else a str.
bool path_arg(PyObject* value, const char* name, std::string& out) {
  if (value == nullptr || value == Py_None) return true;
  PyObject* path = PyOS_FSPath(value);
  if (path == nullptr) return false;
  const char* text = PyUnicode_Check(path) ? PyUnicode_AsUTF8(path) : nullptr;
  if (text == nullptr) {
    if (!PyErr_Occurred()) PyErr_Format(PyExc_TypeError, "%s must be a str path", name);
    Py_DECREF(path);
    return false;
  }
  out = text;
  Py_DECREF(path);
  return true;
}

// None keeps `out`; else "client", "proxy" or "sol".
bool role_arg(PyObject* value, wire_role& out) {
  if (value == nullptr || value == Py_None) return true;
  const char* name = PyUnicode_AsUTF8(value);
  if (name == nullptr) return false;
  const std::string role = name;
  if (role == "client") {
    out = shard::wire::ROLE_CLIENT;
  } else if (role == "proxy") {
    out = shard::wire::ROLE_PROXY;
  } else if (role == "sol") {
    out = shard::wire::ROLE_SOL;
  } else {
    PyErr_Format(PyExc_ValueError, "role=%R: not 'client', 'proxy' or 'sol'", value);
    return false;
  }
  return true;
}

bool node_id_arg(PyObject* value, std::uint32_t& out) {
  if (value == nullptr || value == Py_None) return true;
  const unsigned long id = PyLong_AsUnsignedLong(value);
  if (id == static_cast<unsigned long>(-1) && PyErr_Occurred()) return false;
  if (id > 0xffff) {
    PyErr_Format(PyExc_ValueError, "node_id=%lu out of range 0..65535 (the header's dest_node)", id);
    return false;
  }
  out = static_cast<std::uint32_t>(id);
  return true;
}

// -1: not given; -2: an error is set.
int flag_arg(PyObject* value) {
  if (value == nullptr || value == Py_None) return -1;
  const int truth = PyObject_IsTrue(value);
  return truth < 0 ? -2 : truth;
}

}  // namespace

std::shared_ptr<const netproto::ServerHandshake> server_handshake(PyObject* const* v, const netproto::Limits& limits) {
  auto config = std::make_shared<netproto::ServerHandshake>();
  netproto::ServerPolicy& policy = config->policy;
  if (!parse_codecs(v[0], policy.codecs)) return nullptr;
  if (v[1] != nullptr && v[1] != Py_None) {
    const long threshold = PyLong_AsLong(v[1]);
    if (threshold == -1 && PyErr_Occurred()) return nullptr;
    if (threshold < 0 || threshold > (1l << 30)) {
      PyErr_Format(PyExc_ValueError, "compress_threshold=%ld out of range 0..%ld", threshold, 1l << 30);
      return nullptr;
    }
    policy.compress_threshold = static_cast<std::uint32_t>(threshold);
  }
  policy.limits = limits;
  std::string cert, key;
  if (!path_arg(v[2], "tls_cert", cert) || !path_arg(v[3], "tls_key", key)) return nullptr;
  const int required = flag_arg(v[4]);
  if (required == -2) return nullptr;
  if (cert.empty() != key.empty()) {
    PyErr_SetString(PyExc_ValueError, "tls_cert and tls_key go together");
    return nullptr;
  }
  if (!cert.empty()) {
    std::string error;
    config->tls = netproto::make_server_tls(cert, key, &error);
    if (config->tls == nullptr) {
      PyErr_SetString(PyExc_ValueError, error.c_str());
      return nullptr;
    }
  } else if (required == 1) {
    PyErr_SetString(PyExc_ValueError, "tls_required=True needs tls_cert and tls_key");
    return nullptr;
  }
  policy.tls_supported = config->tls != nullptr;
  // With a certificate, plain clients are refused unless tls_required=False.
  policy.tls_required = policy.tls_supported && required != 0;
  if (!timeout_ms(v[5], config->timeout)) return nullptr;
  if (!role_arg(v[6], policy.role) || !node_id_arg(v[7], policy.node_id)) return nullptr;
  return config;
}

std::shared_ptr<const netproto::ClientHandshake> client_handshake(PyObject* const* v, PyObject* host,
                                                                  const netproto::Limits& limits) {
  auto config = std::make_shared<netproto::ClientHandshake>();
  if (!parse_codecs(v[0], config->codecs)) return nullptr;
  const int tls = flag_arg(v[1]);
  const int verify = flag_arg(v[3]);
  if (tls == -2 || verify == -2) return nullptr;
  std::string ca, server_name;
  if (!path_arg(v[2], "tls_ca", ca)) return nullptr;
  if (v[4] != nullptr && v[4] != Py_None) {
    const char* name = PyUnicode_AsUTF8(v[4]);
    if (name == nullptr) return nullptr;
    server_name = name;
  } else {
    server_name = PyUnicode_AsUTF8(host);
  }
  if (tls != 1 && (!ca.empty() || verify != -1 || (v[4] != nullptr && v[4] != Py_None))) {
    PyErr_SetString(PyExc_ValueError, "tls_ca, tls_verify and tls_server_name need tls=True");
    return nullptr;
  }
  if (tls == 1) {
    std::string error;
    config->tls = netproto::make_client_tls(ca, verify != 0, &error);
    if (config->tls == nullptr) {
      PyErr_SetString(PyExc_ValueError, error.c_str());
      return nullptr;
    }
    config->tls_required = true;  // tls=True never falls back to plain text
    config->server_name = server_name;
  }
  config->max_frame_bytes = limits.max_frame_bytes;
  if (!timeout_ms(v[5], config->timeout)) return nullptr;
  if (!role_arg(v[6], config->role) || !node_id_arg(v[7], config->node_id)) return nullptr;
  return config;
}

std::shared_ptr<const netproto::NativeHandlers> heartbeat_handlers() {
  static const auto handlers = [] {
    auto h = std::make_shared<netproto::NativeHandlers>();
    netproto::answer_heartbeats(*h);
    return h;
  }();
  return handlers;
}

}  // namespace shard::net
