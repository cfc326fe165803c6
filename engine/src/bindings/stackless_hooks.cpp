// The stackless module's monitoring functions: the schedule and channel
// callbacks, the error handler and the switch trap (core/switch_hooks.h holds
// them and says where each is called), with Stackless's signatures: METH_O
// setters that return the previous value, None for "none installed".
#include "bindings/stackless_hooks.h"

#include <utility>

#include "core/cxx_boundary.h"
#include "core/switch_hooks.h"

namespace shard::engine {
namespace {

PyObject* or_none(PyObject* value) { return Py_NewRef(value != nullptr ? value : Py_None); }

// `callable` as a new reference to install, null for None; false with
// TypeError set when it cannot be called.
bool as_callback(PyObject* callable, const char* not_callable, PyObject** out) {
  *out = nullptr;
  if (callable == Py_None) return true;
  if (!PyCallable_Check(callable)) {
    PyErr_SetString(PyExc_TypeError, not_callable);
    return false;
  }
  *out = Py_NewRef(callable);
  return true;
}

// The previous callback (its slot's reference, now the caller's), None for none.
PyObject* previous(PyObject* old) {
  if (old == nullptr) Py_RETURN_NONE;
  return old;
}

PyObject* set_schedule_callback(PyObject*, PyObject* callable) {
  PyObject* callback;
  if (!as_callback(callable, "schedule callback must be callable", &callback)) return nullptr;
  return previous(hooks::exchange_schedule_callback(callback));
}

PyObject* get_schedule_callback(PyObject*, PyObject*) { return or_none(hooks::schedule_callback); }

PyObject* set_channel_callback(PyObject*, PyObject* callable) {
  PyObject* callback;
  if (!as_callback(callable, "channel callback must be callable", &callback)) return nullptr;
  return previous(std::exchange(hooks::channel_callback, callback));
}

PyObject* get_channel_callback(PyObject*, PyObject*) { return or_none(hooks::channel_callback); }

// set_error_handler([handler]), parsed as Stackless parses it ("|O"): no
// argument or None removes the handler. Any object is accepted; one that
// cannot be called fails when an error reaches it, and that error goes to
// main, as in Stackless.
PyObject* set_error_handler(PyObject*, PyObject* args) {
  PyObject* handler = nullptr;
  if (!PyArg_ParseTuple(args, "|O:set_error_handler", &handler)) return nullptr;
  if (handler == Py_None) handler = nullptr;
  return previous(std::exchange(hooks::error_handler, Py_XNewRef(handler)));
}

// switch_trap([change]) ("|i" in Stackless): adds change to this thread's
// level, returns the old level.
PyObject* switch_trap(PyObject*, PyObject* args) {
  int change = 0;
  if (!PyArg_ParseTuple(args, "|i", &change)) return nullptr;
  return PyLong_FromLong(hooks::adjust_switch_trap(change));
}

PyMethodDef hook_methods[] = {
    {"set_schedule_callback", as_cfunction<set_schedule_callback>(), METH_O,
     "set_schedule_callback(callable) -- install a callback for scheduling: callable(prev, next) on every "
     "switch, called on prev before it switches (prev is None when a main tasklet starts up). Returns the "
     "previous callback or None. Pass None to switch monitoring off again."},
    {"get_schedule_callback", as_cfunction<get_schedule_callback>(), METH_NOARGS,
     "get_schedule_callback() -- the current callback for scheduling, or None"},
    {"set_channel_callback", as_cfunction<set_channel_callback>(), METH_O,
     "set_channel_callback(callable) -- install a callback for channels: callable(channel, tasklet, sending, "
     "willblock) before every send and receive. Returns the previous callback or None."},
    {"get_channel_callback", as_cfunction<get_channel_callback>(), METH_NOARGS,
     "get_channel_callback() -- the current channel callback, or None"},
    {"set_error_handler", as_cfunction<set_error_handler>(), METH_VARARGS,
     "set_error_handler(handler) -- set or delete the handler of uncaught exceptions in tasklets: "
     "handler(type, value, tb), run in the dying tasklet. None restores the default, which raises the error "
     "on the main tasklet, as does an error of the handler itself. Returns the previous handler or None."},
    {"switch_trap", as_cfunction<switch_trap>(), METH_VARARGS,
     "switch_trap(change) -- change the switch trap level of the thread. When non-zero, tasklet switches "
     "won't take place; RuntimeError('switch_trap') is raised instead. Returns the old level."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int add_hook_functions(PyObject* module) { return PyModule_AddFunctions(module, hook_methods); }

}  // namespace shard::engine
