// The `_engine` module: the native half of uthread (sleeping and the blocking
// primitives). Python code uses it through engine/python/uthread.py.
#include <cmath>

#include "arguments.h"
#include "scheduler_internal.h"
#include "shard/engine/engine_module.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/sync_types.h"
#include "shard/engine/waiters.h"

namespace shard::engine {
namespace {

using VectorFunction = PyObject* (*)(PyObject*, PyObject* const*, Py_ssize_t, PyObject*);
PyCFunction as_cfunction(VectorFunction function) {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(function));
}

// sleep(seconds): parks the current tasklet on its thread's timer heap. Other
// tasklets run meanwhile; a sleep of 0 or less just yields.
PyObject* sleep(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* seconds_obj;
  if (!parse_arguments("sleep", args, nargs, kwnames, {"seconds"}, 1, &seconds_obj)) return nullptr;
  double seconds = PyFloat_AsDouble(seconds_obj);
  if (seconds == -1 && PyErr_Occurred()) return nullptr;
  if (std::isnan(seconds)) return PyErr_Format(PyExc_ValueError, "sleep() of NaN seconds");
  Scheduler* sched = Scheduler::current();
  if (sched == nullptr) return nullptr;
  sched->set_call_sp(stack_top(args, nargs, kwnames));
  if (seconds <= 0) return sched->schedule(false, Py_None);
  uint64_t token = sched->prepare_park();
  bool timed_out = false;
  return sched->park(token, now_ns() + std::max<int64_t>(1, std::llround(seconds * 1e9)), &timed_out);
}

PyObject* sleeper_count(PyObject*, PyObject*) {
  Scheduler* sched = Scheduler::current();
  return sched != nullptr ? PyLong_FromSize_t(sched->timer_count()) : nullptr;
}

PyMethodDef module_methods[] = {
    {"sleep", as_cfunction(sleep), METH_FASTCALL | METH_KEYWORDS,
     "sleep(seconds): park the current tasklet for that long (a timer, not a busy wait)"},
    {"sleeper_count", sleeper_count, METH_NOARGS, "timer entries of this thread (stale ones included)"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_engine", "The native half of uthread: sleep and blocking primitives.", -1,
    module_methods, nullptr, nullptr, nullptr, nullptr,
};

int add_type(PyObject* module, const char* name, PyTypeObject* type) {
  if (PyType_Ready(type) < 0) return -1;
  return PyModule_AddObjectRef(module, name, reinterpret_cast<PyObject*>(type));
}

}  // namespace
}  // namespace shard::engine

extern "C" PyObject* PyInit__engine() {
  using namespace shard::engine;
  PyObject* stackless = PyImport_ImportModule("stackless");  // creates TaskletExit and the types
  if (stackless == nullptr) return nullptr;
  Py_DECREF(stackless);
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  if (add_type(module, "Semaphore", &SemaphoreType) < 0 || add_type(module, "RLock", &RLockType) < 0 ||
      add_type(module, "Event", &EventType) < 0 || add_type(module, "WaitQueue", &WaitQueueType) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
