// The `_engine` module: the native half of uthread (sleeping and the blocking
// primitives). Python code uses it through engine/python/uthread.py.
#include <chrono>
#include <cmath>
#include <thread>

#include "arguments.h"
#include "scheduler_internal.h"
#include "shard/engine/dispatcher.h"
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

// call_in_thread(fn, *args, timeout=None): runs fn(*args) on a worker thread
// (which takes the interpreter lock like any Python thread) while only the
// calling tasklet waits; returns its result or raises its exception.
PyObject* call_in_thread(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* timeout_obj = nullptr;
  Py_ssize_t nkw = kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0;
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, k), "timeout") != 0) {
      return PyErr_Format(PyExc_TypeError, "call_in_thread() got an unexpected keyword argument '%U' "
                          "(only positional arguments are passed to the callable)", PyTuple_GET_ITEM(kwnames, k));
    }
    timeout_obj = args[nargs + k];
  }
  if (nargs < 1) return PyErr_Format(PyExc_TypeError, "call_in_thread() missing required argument 'fn' (pos 1)");
  if (!PyCallable_Check(args[0])) {
    return PyErr_Format(PyExc_TypeError, "call_in_thread() fn must be callable, not %s", Py_TYPE(args[0])->tp_name);
  }
  double timeout;
  if (!parse_timeout(timeout_obj, &timeout)) return nullptr;
  PyObject* fn_args = PyTuple_New(nargs - 1);
  if (fn_args == nullptr) return nullptr;
  for (Py_ssize_t i = 1; i < nargs; ++i) PyTuple_SET_ITEM(fn_args, i - 1, Py_NewRef(args[i]));
  PyObject* result = Dispatcher::instance().call_in_thread(args[0], fn_args, timeout);
  Py_DECREF(fn_args);
  return result;
}

// sleep_in_worker(seconds, timeout=None): C++ work that blocks a worker (no
// Python on the worker): the plainest off-thread request, for tests and benchmarks.
PyObject* sleep_in_worker(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* parsed[2] = {nullptr, nullptr};
  if (!parse_arguments("sleep_in_worker", args, nargs, kwnames, {"seconds", "timeout"}, 1, parsed)) return nullptr;
  double seconds = PyFloat_AsDouble(parsed[0]);
  if (seconds == -1 && PyErr_Occurred()) return nullptr;
  double timeout;
  if (!parse_timeout(parsed[1], &timeout)) return nullptr;
  auto duration = std::chrono::nanoseconds(std::llround(std::max(0.0, seconds) * 1e9));
  return Dispatcher::instance().run_blocking([duration] { std::this_thread::sleep_for(duration); }, timeout);
}

PyObject* set_dispatch_strategy(PyObject*, PyObject* name) {
  const char* text = PyUnicode_AsUTF8(name);
  if (text == nullptr) return nullptr;
  Strategy s;
  if (!strategy_from_name(text, &s)) {
    return PyErr_Format(PyExc_ValueError, "unknown dispatch strategy '%s' (main_loop, on_block, "
                        "main_thread_callback, worker_acquires_gil, pending_call)", text);
  }
  Dispatcher& d = Dispatcher::instance();
  PyObject* old = PyUnicode_FromString(strategy_name(d.strategy()));
  d.set_strategy(s);
  return old;
}

PyObject* dispatch_strategy(PyObject*, PyObject*) {
  return PyUnicode_FromString(strategy_name(Dispatcher::instance().strategy()));
}

PyObject* histogram_dict(const LatencyHistogram& h) {
  return Py_BuildValue("{s:K,s:d,s:d,s:d}", "count", static_cast<unsigned long long>(h.count()),
                       "p50_us", h.quantile(0.5) / 1e3, "p99_us", h.quantile(0.99) / 1e3, "max_us", h.max() / 1e3);
}

PyObject* dispatch_stats(PyObject*, PyObject*) {
  Dispatcher& d = Dispatcher::instance();
  PyObject* all = PyDict_New();
  for (int i = 0; all != nullptr && i < kStrategies; ++i) {
    const StrategyStats& s = d.stats(static_cast<Strategy>(i));
    PyObject* dispatch = histogram_dict(s.dispatch);
    PyObject* run = histogram_dict(s.run);
    PyObject* one = Py_BuildValue("{s:N,s:N,s:K,s:K,s:K}", "dispatch_latency", dispatch, "run_latency", run,
                                  "drains", static_cast<unsigned long long>(s.drains), "completions",
                                  static_cast<unsigned long long>(s.completions), "lock_acquisitions",
                                  static_cast<unsigned long long>(s.lock_acquisitions));
    if (one == nullptr || PyDict_SetItemString(all, strategy_name(static_cast<Strategy>(i)), one) < 0) Py_CLEAR(all);
    Py_XDECREF(one);
  }
  return all;
}

PyObject* reset_dispatch_stats(PyObject*, PyObject*) {
  Dispatcher::instance().reset_stats();
  Py_RETURN_NONE;
}

PyMethodDef module_methods[] = {
    {"call_in_thread", as_cfunction(call_in_thread), METH_FASTCALL | METH_KEYWORDS,
     "call_in_thread(fn, *args, timeout=None): fn(*args) on a worker; only this tasklet waits"},
    {"sleep_in_worker", as_cfunction(sleep_in_worker), METH_FASTCALL | METH_KEYWORDS,
     "sleep_in_worker(seconds, timeout=None): a C++ request that blocks a worker that long"},
    {"set_dispatch_strategy", set_dispatch_strategy, METH_O,
     "set_dispatch_strategy(name) -> previous: how completions wake their tasklets"},
    {"dispatch_strategy", dispatch_strategy, METH_NOARGS, "the dispatch strategy in force"},
    {"dispatch_stats", dispatch_stats, METH_NOARGS, "per strategy: latencies (us), drains, completions, lock acquisitions"},
    {"reset_dispatch_stats", reset_dispatch_stats, METH_NOARGS, nullptr},
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
