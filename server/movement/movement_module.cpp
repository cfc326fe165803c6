// _movement: registration (solar systems, entities and the connection each is
// moved through) and summaries on request; the packets themselves never reach
// Python (docs/movement.md). One system per process, ticked by a native tick
// hook in phase 5 of every frame.
#include "movement_module.h"

#include <string>

#include "bindings/arguments.h"
#include "core/cxx_boundary.h"
#include "movement_system.h"
#include "net_types.h"
#include "proxy_routes.h"
#include "shard/engine/game_loop.h"
#include "shard/engine/io_pool.h"

namespace shard::movement {
namespace {

using engine::as_cfunction;

// Never destroyed: IO threads may run its handler until they stop, which is
// after the interpreter's modules are gone.
MovementSystem& the_system() {
  static MovementSystem* system = new MovementSystem;
  return *system;
}

// The handlers _net.listen(native=...) copies into its listener's table.
netproto::NativeHandlers& the_handlers() {
  static netproto::NativeHandlers* handlers = [] {
    auto* h = new netproto::NativeHandlers;
    the_system().install(*h);
    return h;
  }();
  return *handlers;
}

// The proxy's routes and its client listener's handlers; never destroyed either.
ProxyRoutes& the_routes() {
  static ProxyRoutes* routes = new ProxyRoutes;
  return *routes;
}

netproto::NativeHandlers& the_proxy_handlers() {
  static netproto::NativeHandlers* handlers = [] {
    auto* h = new netproto::NativeHandlers;
    h->set(netproto::MessageKind::kMovement, the_routes().handler());
    return h;
  }();
  return *handlers;
}

netproto::NativeHandlers& the_link_handlers() {
  static netproto::NativeHandlers* handlers = [] {
    auto* h = new netproto::NativeHandlers;
    h->set(netproto::MessageKind::kMovement, the_routes().reverse_handler());
    return h;
  }();
  return *handlers;
}

// A _net.Connection's C++ connection; null with TypeError set.
std::shared_ptr<netproto::Connection> connection_of(PyObject* object, const char* name) {
  if (!PyObject_TypeCheck(object, &net::ConnectionType)) {
    PyErr_Format(PyExc_TypeError, "%s must be a _net.Connection, not %.100s", name, Py_TYPE(object)->tp_name);
    return nullptr;
  }
  return reinterpret_cast<net::ConnectionObject*>(object)->connection;
}

void tick(void*, uint64_t, double dt) { the_system().tick(dt); }

bool vec3_of(PyObject* value, const char* name, Vec3* out) {
  if (!PyArg_ParseTuple(value, "ddd", &out->x, &out->y, &out->z)) {
    PyErr_Format(PyExc_TypeError, "%s must be a tuple of 3 numbers", name);
    return false;
  }
  return true;
}

bool double_arg(PyObject* value, double* out) {
  if (value == nullptr) return true;
  *out = PyFloat_AsDouble(value);
  return !(*out == -1 && PyErr_Occurred());
}

// add_system(system_id, min, max, *, max_speed, interest_radius, cell_size)
PyObject* add_system(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* p[6] = {};
  if (!engine::parse_arguments("add_system", args, nargs, kwnames,
                               {"system_id", "min", "max", "max_speed", "interest_radius", "cell_size"}, 3, p)) {
    return nullptr;
  }
  const unsigned long id = PyLong_AsUnsignedLong(p[0]);
  if (PyErr_Occurred()) return nullptr;
  SystemConfig config;
  if (!vec3_of(p[1], "min", &config.min) || !vec3_of(p[2], "max", &config.max)) return nullptr;
  if (!double_arg(p[3], &config.max_speed) || !double_arg(p[4], &config.interest_radius) ||
      !double_arg(p[5], &config.cell_size)) {
    return nullptr;
  }
  if (id > UINT32_MAX || !the_system().add_system(static_cast<std::uint32_t>(id), config)) {
    return PyErr_Format(PyExc_ValueError,
                        "solar system %lu exists or is invalid (min <= max, max_speed > 0, cell_size > 0)", id);
  }
  Py_RETURN_NONE;
}

// add_entity(entity_id, system_id, connection, position, shared=False):
// `connection` (a _net.Connection, or None for an entity nobody controls) is
// where its moves come from and its neighbours' updates go; shared: it is a
// proxy's link, which a refused move does not close.
PyObject* add_entity(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* p[5] = {};
  if (!engine::parse_arguments("add_entity", args, nargs, kwnames,
                               {"entity_id", "system_id", "connection", "position", "shared"}, 4, p)) {
    return nullptr;
  }
  const int shared = p[4] == nullptr ? 0 : PyObject_IsTrue(p[4]);
  if (shared < 0) return nullptr;
  const unsigned long long id = PyLong_AsUnsignedLongLong(p[0]);
  if (PyErr_Occurred()) return nullptr;
  const unsigned long system_id = PyLong_AsUnsignedLong(p[1]);
  if (PyErr_Occurred()) return nullptr;
  std::shared_ptr<netproto::Connection> connection;
  if (p[2] != Py_None) {
    if (!PyObject_TypeCheck(p[2], &net::ConnectionType)) {
      return PyErr_Format(PyExc_TypeError, "connection must be a _net.Connection or None, not %.100s",
                          Py_TYPE(p[2])->tp_name);
    }
    connection = reinterpret_cast<net::ConnectionObject*>(p[2])->connection;
  }
  Vec3 position;
  if (!vec3_of(p[3], "position", &position)) return nullptr;
  std::string error;
  if (system_id > UINT32_MAX ||
      !the_system().add_entity(id, static_cast<std::uint32_t>(system_id), connection, position, &error)) {
    return PyErr_Format(PyExc_ValueError, "add_entity: %s", error.empty() ? "bad system id" : error.c_str());
  }
  if (shared && connection != nullptr) the_system().add_shared_link(connection);
  Py_RETURN_NONE;
}

// take_offenders() -> [(entity_id, reason), ...]: the refused moves shared
// links brought since the last call.
PyObject* take_offenders(PyObject*, PyObject*) {
  std::vector<MovementSystem::Offender> offenders = the_system().take_offenders();
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(offenders.size()));
  if (list == nullptr) return nullptr;
  for (std::size_t i = 0; i < offenders.size(); ++i) {
    PyObject* item = Py_BuildValue("(KN)", static_cast<unsigned long long>(offenders[i].entity_id),
                                   PyUnicode_DecodeUTF8(offenders[i].reason.data(),
                                                        static_cast<Py_ssize_t>(offenders[i].reason.size()),
                                                        "replace"));
    if (item == nullptr) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), item);
  }
  return list;
}

PyObject* remove_entity(PyObject*, PyObject* id_obj) {
  const unsigned long long id = PyLong_AsUnsignedLongLong(id_obj);
  if (PyErr_Occurred()) return nullptr;
  return PyBool_FromLong(the_system().remove_entity(id));
}

PyObject* set_update_interval(PyObject*, PyObject* seconds_obj) {
  double seconds;
  if (!double_arg(seconds_obj, &seconds)) return nullptr;
  if (!(seconds >= 0 && seconds <= 60)) {
    PyErr_Format(PyExc_ValueError, "the update interval is in [0, 60] seconds, not %R", seconds_obj);
    return nullptr;
  }
  the_system().set_update_interval(seconds);
  Py_RETURN_NONE;
}

PyObject* entity(PyObject*, PyObject* id_obj) {
  const unsigned long long id = PyLong_AsUnsignedLongLong(id_obj);
  if (PyErr_Occurred()) return nullptr;
  std::optional<EntityState> s = the_system().entity(id);
  if (!s) Py_RETURN_NONE;
  return Py_BuildValue("{s:k,s:(ddd),s:(ddd),s:d,s:k}", "system_id", static_cast<unsigned long>(s->system_id),
                       "position", s->position.x, s->position.y, s->position.z, "velocity", s->velocity.x,
                       s->velocity.y, s->velocity.z, "heading", static_cast<double>(s->heading), "sequence",
                       static_cast<unsigned long>(s->sequence));
}

PyObject* in_range(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* p[2] = {};
  if (!engine::parse_arguments("in_range", args, nargs, kwnames, {"entity_id", "radius"}, 2, p)) return nullptr;
  const unsigned long long id = PyLong_AsUnsignedLongLong(p[0]);
  if (PyErr_Occurred()) return nullptr;
  double radius;
  if (!double_arg(p[1], &radius)) return nullptr;
  std::vector<std::uint64_t> ids = the_system().in_range(id, radius);
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(ids.size()));
  if (list == nullptr) return nullptr;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    PyObject* item = PyLong_FromUnsignedLongLong(ids[i]);
    if (item == nullptr) {
      Py_DECREF(list);
      return nullptr;
    }
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), item);
  }
  return list;
}

PyObject* stats(PyObject*, PyObject*) {
  MovementSystem::Stats s = the_system().stats();
  auto k = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  // lock_acquisitions: the interpreter lock taken on the IO threads, where the
  // movement handler runs; it stays 0 on a node that uses no worker_acquires_gil.
  return Py_BuildValue("{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:n,s:K}", "packets_in", k(s.packets_in), "applied",
                       k(s.applied), "rejected", k(s.rejected), "stale", k(s.stale), "unknown", k(s.unknown), "updates_out", k(s.updates_out),
                       "ticks", k(s.ticks), "queued", static_cast<Py_ssize_t>(s.queued), "lock_acquisitions",
                       k(engine::IoPool::instance().stats().lock_acquisitions));
}

PyObject* handlers(PyObject*, PyObject*) {
  return PyCapsule_New(&the_handlers(), net::kNativeHandlersCapsule, nullptr);
}

PyObject* proxy_handlers(PyObject*, PyObject*) {
  return PyCapsule_New(&the_proxy_handlers(), net::kNativeHandlersCapsule, nullptr);
}

PyObject* proxy_link_handlers(PyObject*, PyObject*) {
  return PyCapsule_New(&the_link_handlers(), net::kNativeHandlersCapsule, nullptr);
}

// route_entity(client, entity_id, link, sol_node)
PyObject* route_entity(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* p[4] = {};
  if (!engine::parse_arguments("route_entity", args, nargs, kwnames, {"client", "entity_id", "link", "sol_node"}, 4,
                               p)) {
    return nullptr;
  }
  auto client = connection_of(p[0], "client");
  if (client == nullptr) return nullptr;
  const unsigned long long id = PyLong_AsUnsignedLongLong(p[1]);
  if (PyErr_Occurred()) return nullptr;
  auto link = connection_of(p[2], "link");
  if (link == nullptr) return nullptr;
  const unsigned long node = PyLong_AsUnsignedLong(p[3]);
  if (PyErr_Occurred()) return nullptr;
  if (node > UINT16_MAX || id == 0 || id > netproto::kMaxTargetId) {
    return PyErr_Format(PyExc_ValueError, "sol_node %lu (0..65535) or entity id %llu (1..2**48-1) out of range", node,
                        id);
  }
  the_routes().set(client, id, std::move(link), static_cast<std::uint16_t>(node));
  Py_RETURN_NONE;
}

PyObject* unroute(PyObject*, PyObject* client_obj) {
  auto client = connection_of(client_obj, "client");
  if (client == nullptr) return nullptr;
  return PyLong_FromSize_t(the_routes().clear(client.get()));
}

PyObject* proxy_stats(PyObject*, PyObject*) {
  const ForwardStats& s = the_routes().stats();
  const ForwardStats& r = the_routes().reverse_stats();
  auto k = [](const std::atomic<std::uint64_t>& v) { return static_cast<unsigned long long>(v.load()); };
  return Py_BuildValue("{s:n,s:K,s:K,s:K,s:K,s:K}", "routes", static_cast<Py_ssize_t>(the_routes().size()),
                       "forwarded", k(s.forwarded), "refused", k(s.refused), "dropped", k(s.dropped), "updates_forwarded",
                       k(r.forwarded), "updates_dropped", k(r.dropped));
}

PyMethodDef methods[] = {
    {"add_system", as_cfunction<add_system>(), METH_FASTCALL | METH_KEYWORDS,
     "add_system(system_id, min, max, *, max_speed=1000.0, interest_radius=1e5, cell_size=1e5)\n\n"
     "A solar system: bounds (min, max: (x, y, z) metres), the speed limit (m/s), who hears of a move "
     "(interest_radius, metres) and the interest grid's cell edge. Fixed once added."},
    {"add_entity", as_cfunction<add_entity>(), METH_FASTCALL | METH_KEYWORDS,
     "add_entity(entity_id, system_id, connection, position, shared=False)\n\n"
     "An entity at position (x, y, z) in the system, moved through `connection` (a _net.Connection, whose "
     "movement frames for this entity are applied at each tick; neighbours' updates go there), or None. "
     "shared: the connection is a proxy's link; a move on it that fails a check is dropped and reported by "
     "take_offenders() instead of closing it."},
    {"take_offenders", as_cfunction<take_offenders>(), METH_NOARGS,
     "take_offenders() -> [(entity_id, reason), ...]: moves refused on shared links since the last call"},
    {"remove_entity", as_cfunction<remove_entity>(), METH_O, "remove_entity(entity_id) -> bool"},
    {"set_update_interval", as_cfunction<set_update_interval>(), METH_O,
     "set_update_interval(seconds): updates go out at most that often (0: at every tick), each moved entity "
     "once with its latest state, each recipient's back to back (one write and TLS record at its proxy)"},
    {"entity", as_cfunction<entity>(), METH_O,
     "entity(entity_id) -> {system_id, position, velocity, heading, sequence} or None"},
    {"in_range", as_cfunction<in_range>(), METH_FASTCALL | METH_KEYWORDS,
     "in_range(entity_id, radius) -> sorted ids of the other entities of its system within radius metres"},
    {"stats", as_cfunction<stats>(), METH_NOARGS,
     "packets_in, applied, rejected, stale, unknown, updates_out, ticks, queued, lock_acquisitions (IO threads)"},
    {"handlers", as_cfunction<handlers>(), METH_NOARGS,
     "the native handlers to pass as _net.listen(native=...): movement frames go to this system"},
    {"proxy_handlers", as_cfunction<proxy_handlers>(), METH_NOARGS,
     "the proxy's native handlers, for its client listener's _net.listen(native=...): movement frames are "
     "forwarded by route_entity's table on the IO thread"},
    {"proxy_link_handlers", as_cfunction<proxy_link_handlers>(), METH_NOARGS,
     "the proxy's native handlers for its links to sols, for _net.connect(native=...): a sol's movement update "
     "for an entity goes to the client that moves it (dropped when none does)"},
    {"route_entity", as_cfunction<route_entity>(), METH_FASTCALL | METH_KEYWORDS,
     "route_entity(client, entity_id, link, sol_node)\n\n"
     "The proxy side: movement frames for entity_id from the client connection go on the link connection to "
     "sol node sol_node (dest_node rewritten); any other entity's closes the client."},
    {"unroute", as_cfunction<unroute>(), METH_O,
     "unroute(client) -> int: forget the client's routes (its session ended); how many there were"},
    {"proxy_stats", as_cfunction<proxy_stats>(), METH_NOARGS, "routes, forwarded, refused, dropped, updates_forwarded, updates_dropped"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_movement",
                          "The sol's native movement system: registration and summaries (docs/movement.md).", -1,
                          methods};

PyObject* init() {
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  static bool ticking = false;  // a second import (a subinterpreter) adds no second hook
  if (!ticking) {
    engine::GameLoop::instance().add_native_tick(tick, nullptr);
    ticking = true;
  }
  return module;
}

}  // namespace
}  // namespace shard::movement

extern "C" PyObject* PyInit__movement() { return shard::engine::guarded<shard::movement::init>(); }
