// The `_engine` module: the native half of uthread (sleeping and the blocking
// primitives). Python code uses it through engine/python/uthread.py.
#include <chrono>
#include <cmath>
#include <thread>

#include "bindings/arguments.h"
#include "bindings/io_hooks.h"
#include "bindings/io_wait.h"
#include "core/clock.h"
#include "shard/engine/dispatcher.h"
#include "shard/engine/engine_module.h"
#include "shard/engine/game_loop.h"
#include "shard/engine/preemption.h"
#include "shard/engine/stack_pool.h"
#include "shard/engine/tasklet.h"
#include "shard/engine/worker_pool.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/stack_pool.h"
#include "shard/engine/sync_types.h"
#include "shard/engine/waiters.h"

namespace shard::engine {
namespace {

// sleep(seconds): parks the current tasklet on its thread's timer heap. Other
// tasklets run meanwhile; a sleep of 0 or less just yields.
PyObject* sleep(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* seconds_obj;
  if (!parse_arguments("sleep", args, nargs, kwnames, {"seconds"}, 1, &seconds_obj)) return nullptr;
  double seconds = PyFloat_AsDouble(seconds_obj);
  if (seconds == -1 && PyErr_Occurred()) return nullptr;
  if (std::isnan(seconds)) return PyErr_Format(PyExc_ValueError, "sleep() of NaN seconds");
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  sched->set_call_sp(stack_top(args, nargs, kwnames));
  if (seconds <= 0) return sched->schedule(false, Py_None);
  uint64_t token = sched->prepare_park();
  bool timed_out = false;
  return sched->park(token, now_ns() + std::max<int64_t>(1, std::llround(seconds * 1e9)), &timed_out);
}

PyObject* sleeper_count(PyObject*, PyObject*) {
  Scheduler* sched = Scheduler::current_or_create();
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
  Dispatcher* dispatcher = Dispatcher::get();
  if (dispatcher == nullptr) return nullptr;
  PyObject* fn_args = PyTuple_New(nargs - 1);
  if (fn_args == nullptr) return nullptr;
  for (Py_ssize_t i = 1; i < nargs; ++i) PyTuple_SET_ITEM(fn_args, i - 1, Py_NewRef(args[i]));
  PyObject* result = dispatcher->call_in_thread(args[0], fn_args, timeout);
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
  Dispatcher* dispatcher = Dispatcher::get();
  if (dispatcher == nullptr) return nullptr;
  return dispatcher->run_blocking([duration] { std::this_thread::sleep_for(duration); }, timeout);
}

// hold_for_completions(count, timeout=30): for tests that must know the
// completion order itself, not guess it from delays (a loaded machine stalls
// any thread for longer than the gaps between them). Holds the main thread
// until `count` completions wait to be dispatched and returns the tasklets
// they will wake, in completion order; nothing is dispatched meanwhile under
// any strategy: no bytecode runs (no pending call), nothing waits (no wake of
// phase 1 or the idle wait), and the interpreter lock stays here (no worker
// drains). Under worker_acquires_gil a thread that completed one request
// waits for the lock before it completes another: hold for completions of
// distinct threads (one IO thread per operation). TimeoutError when fewer
// have completed by `timeout`.
PyObject* hold_for_completions(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* parsed[2] = {nullptr, nullptr};
  if (!parse_arguments("hold_for_completions", args, nargs, kwnames, {"count", "timeout"}, 1, parsed)) return nullptr;
  Py_ssize_t count = PyLong_AsSsize_t(parsed[0]);
  if (count == -1 && PyErr_Occurred()) return nullptr;
  double timeout = 30;
  if (parsed[1] != nullptr && !parse_timeout(parsed[1], &timeout)) return nullptr;
  Dispatcher* d = Dispatcher::get();
  if (d == nullptr) return nullptr;
  if (!d->on_main_thread()) {
    return PyErr_Format(PyExc_RuntimeError, "hold_for_completions() on another thread than the dispatcher's");
  }
  const int64_t deadline = timeout >= 0 ? now_ns() + std::llround(timeout * 1e9) : 0;
  std::vector<Tasklet*> waiters = d->queued_waiters();
  while (static_cast<Py_ssize_t>(waiters.size()) < count) {
    if (deadline != 0 && now_ns() >= deadline) {
      return PyErr_Format(PyExc_TimeoutError, "hold_for_completions(): %zd of %zd completions within %f s",
                          static_cast<Py_ssize_t>(waiters.size()), count, timeout);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the lock held on purpose
    waiters = d->queued_waiters();
  }
  PyObject* list = PyList_New(static_cast<Py_ssize_t>(waiters.size()));
  if (list == nullptr) return nullptr;
  for (std::size_t i = 0; i < waiters.size(); ++i) {
    PyList_SET_ITEM(list, static_cast<Py_ssize_t>(i), Py_NewRef(reinterpret_cast<PyObject*>(waiters[i])));
  }
  return list;
}

PyObject* set_dispatch_strategy(PyObject*, PyObject* name) {
  const char* text = PyUnicode_AsUTF8(name);
  if (text == nullptr) return nullptr;
  Strategy s;
  if (!strategy_from_name(text, &s)) {
    return PyErr_Format(PyExc_ValueError, "unknown dispatch strategy '%s' (main_loop, on_block, "
                        "main_thread_callback, worker_acquires_gil, pending_call)", text);
  }
  Dispatcher* d = Dispatcher::get();
  if (d == nullptr) return nullptr;
  PyObject* old = PyUnicode_FromString(strategy_name(d->strategy()));
  d->set_strategy(s);
  return old;
}

PyObject* dispatch_strategy(PyObject*, PyObject*) {
  Dispatcher* d = Dispatcher::get();
  return d != nullptr ? PyUnicode_FromString(strategy_name(d->strategy())) : nullptr;
}

PyObject* histogram_dict(const LatencyHistogram& h) {
  return Py_BuildValue("{s:K,s:d,s:d,s:d}", "count", static_cast<unsigned long long>(h.count()),
                       "p50_us", h.quantile(0.5) / 1e3, "p99_us", h.quantile(0.99) / 1e3, "max_us", h.max() / 1e3);
}

PyObject* dispatch_stats(PyObject*, PyObject*) {
  Dispatcher* d = Dispatcher::get();
  if (d == nullptr) return nullptr;
  PyObject* all = PyDict_New();
  for (int i = 0; all != nullptr && i < kStrategies; ++i) {
    const StrategyStats& s = d->stats(static_cast<Strategy>(i));
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

PyObject* worker_count(PyObject*, PyObject*) {
  Dispatcher* d = Dispatcher::get();
  return d != nullptr ? PyLong_FromLong(d->worker_threads()) : nullptr;
}

PyObject* reset_dispatch_stats(PyObject*, PyObject*) {
  Dispatcher* d = Dispatcher::get();
  if (d == nullptr) return nullptr;
  d->reset_stats();
  Py_RETURN_NONE;
}

// resource_counts(): what the test suite's leak check compares before and
// after each test module. "tasklets" are the live ones (started, not
// finished: they hold a stack and frames); "tasklet_objects" counts every
// tasklet object, dead ones that statistics or late references still hold
// included. A worker's own thread state (and the scheduler it gets once its
// work touches stackless, with that scheduler's main tasklet) lives as long as
// the worker: those are reported apart, as worker_*. This thread's timer
// entries of waits that ended early are dropped first: they only hold
// tasklets until their deadline passes.
PyObject* resource_counts(PyObject*, PyObject*) {
  if (Scheduler* sched = Scheduler::existing()) sched->drop_stale_timers();
  std::size_t thread_states = 0, worker_thread_states = 0, worker_schedulers = 0;
  for (PyThreadState* ts = PyInterpreterState_ThreadHead(PyThreadState_Get()->interp); ts != nullptr;
       ts = PyThreadState_Next(ts)) {
    if (!Scheduler::is_passive_thread(ts)) {
      ++thread_states;
      continue;
    }
    ++worker_thread_states;
    if (Scheduler::for_thread(static_cast<unsigned long>(ts->thread_id)) != nullptr) ++worker_schedulers;
  }
  Dispatcher* d = Dispatcher::get();
  if (d == nullptr) return nullptr;
  auto n = [](std::size_t count) { return static_cast<Py_ssize_t>(count); };
  return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:n,s:K}", "tasklets",
                       n(Scheduler::started_tasklets_of_all_threads()), "tasklet_objects",
                       n(tasklets_alive() - worker_schedulers), "schedulers",
                       n(Scheduler::allocated() - worker_schedulers), "thread_states", n(thread_states), "timers",
                       n(Preemption::timers_alive()), "stack_blocks", n(StackPool::instance().blocks_in_use()),
                       "worker_thread_states", n(worker_thread_states), "worker_schedulers", n(worker_schedulers),
                       "requests_in_flight", static_cast<unsigned long long>(d->in_flight()));
}

// ---------------------------------------------------------------- the game loop

PyObject* loop_run(PyObject*, PyObject*) {
  if (Dispatcher::get() == nullptr) return nullptr;
  return GameLoop::instance().run();
}

PyObject* loop_stop(PyObject*, PyObject*) {
  GameLoop::instance().stop();
  Py_RETURN_NONE;
}

PyObject* loop_running(PyObject*, PyObject*) { return PyBool_FromLong(GameLoop::instance().running()); }

PyObject* set_fps(PyObject*, PyObject* value) {
  double fps = PyFloat_AsDouble(value);
  if (fps == -1 && PyErr_Occurred()) return nullptr;
  if (!(fps > 0)) return PyErr_Format(PyExc_ValueError, "fps must be positive");
  GameLoop& loop = GameLoop::instance();
  double old = loop.fps();
  loop.set_fps(fps);
  return PyFloat_FromDouble(old);
}

PyObject* get_fps(PyObject*, PyObject*) { return PyFloat_FromDouble(GameLoop::instance().fps()); }

PyObject* set_run_budget(PyObject*, PyObject* value) {
  double fraction = PyFloat_AsDouble(value);
  if (fraction == -1 && PyErr_Occurred()) return nullptr;
  if (!(fraction > 0 && fraction <= 1)) return PyErr_Format(PyExc_ValueError, "run budget is a fraction of the frame in (0, 1]");
  GameLoop::instance().set_run_budget(fraction);
  Py_RETURN_NONE;
}

PyObject* set_long_run_limit(PyObject*, PyObject* value) {
  double ms = PyFloat_AsDouble(value);
  if (ms == -1 && PyErr_Occurred()) return nullptr;
  GameLoop::instance().set_long_run_limit_ms(ms);
  Py_RETURN_NONE;
}

PyObject* add_tick(PyObject*, PyObject* callable) {
  if (!PyCallable_Check(callable)) return PyErr_Format(PyExc_TypeError, "tick hook must be callable");
  if (GameLoop::instance().add_tick(callable) < 0) return nullptr;
  return Py_NewRef(callable);
}

PyObject* remove_tick(PyObject*, PyObject* callable) {
  if (GameLoop::instance().remove_tick(callable) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* register_service(PyObject*, PyObject* tasklet) {
  if (!PyObject_TypeCheck(tasklet, &TaskletType)) return PyErr_Format(PyExc_TypeError, "register_service() takes a tasklet");
  if (GameLoop::instance().register_service(tasklet) < 0) return nullptr;
  return Py_NewRef(tasklet);
}

PyObject* be_nice(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (!parse_arguments("be_nice", args, nargs, kwnames, {}, 0, nullptr)) return nullptr;
  if (Scheduler* sched = Scheduler::current_or_create()) sched->set_call_sp(stack_top(args, nargs, kwnames));
  return GameLoop::instance().be_nice();
}

PyObject* frame_stats(PyObject*, PyObject*) {
  GameLoop& loop = GameLoop::instance();
  const FrameStats& f = loop.last_frame();
  auto ms = [](int64_t ns) { return ns / 1e6; };
  PyObject* longest = f.longest_slice_tasklet != nullptr ? f.longest_slice_tasklet : Py_None;
  return Py_BuildValue(
      "{s:K,s:d,s:d,s:d,s:i,s:d,s:d,s:d,s:d,s:d,s:O,s:i,s:i,s:i,s:n,s:K,s:d,s:O,s:K,s:d,s:d}", "frame",
      static_cast<unsigned long long>(f.frame), "frame_ms", ms(f.frame_ns), "wait_ms", ms(f.wait_ns), "wait_run_ms",
      ms(f.wait_run_ns), "wait_runs", f.wait_runs, "dispatch_ms",
      ms(f.dispatch_ns), "timers_ms", ms(f.timers_ns), "run_ms", ms(f.run_ns), "run_budget_ms", ms(f.run_budget_ns), "tick_ms", ms(f.tick_ns), "overrun",
      f.overrun ? Py_True : Py_False, "dispatched", f.dispatched, "woken", f.woken, "runnable", f.runnable, "alive",
      static_cast<Py_ssize_t>(f.alive), "switches", static_cast<unsigned long long>(f.switches), "longest_run_ms",
      ms(f.longest_slice_ns), "longest_run_tasklet", longest, "overruns",
      static_cast<unsigned long long>(loop.overruns()), "busy_ms_total", ms(loop.busy_ns()), "fps", loop.fps());
}

#ifdef SHARD_SANITIZE_ADDRESS
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif

PyObject* stack_guard_pages(PyObject*, PyObject*) {
  StackPool& pool = StackPool::instance();
  return Py_BuildValue("{s:O,s:n}", "enabled", pool.guard_pages() ? Py_True : Py_False, "guarded",
                       static_cast<Py_ssize_t>(pool.guarded_blocks()));
}

PyMethodDef module_methods[] = {
    {"loop_run", as_cfunction<loop_run>(), METH_NOARGS, "run the game loop on this (main) tasklet until loop_stop() or SIGINT/SIGTERM"},
    {"loop_stop", as_cfunction<loop_stop>(), METH_NOARGS, "stop the game loop at the end of the frame (any thread)"},
    {"loop_running", as_cfunction<loop_running>(), METH_NOARGS, nullptr},
    {"set_fps", as_cfunction<set_fps>(), METH_O, "set_fps(fps) -> previous; takes effect from the next frame"},
    {"fps", as_cfunction<get_fps>(), METH_NOARGS, nullptr},
    {"set_run_budget", as_cfunction<set_run_budget>(), METH_O, "set_run_budget(fraction): phase 4's soft budget, a fraction of the frame"},
    {"set_long_run_limit", as_cfunction<set_long_run_limit>(), METH_O,
     "set_long_run_limit(ms): tasklets running longer without switching are logged once (before loop_run)"},
    {"add_tick", as_cfunction<add_tick>(), METH_O, "add_tick(hook): hook(frame, dt) runs in phase 5 of every frame"},
    {"remove_tick", as_cfunction<remove_tick>(), METH_O, nullptr},
    {"register_service", as_cfunction<register_service>(), METH_O, "register_service(tasklet): killed when the loop shuts down"},
    {"be_nice", as_cfunction<be_nice>(), METH_FASTCALL | METH_KEYWORDS,
     "be_nice(): inside the loop, wait for the next frame's phase 3; else schedule()"},
    {"frame_stats", as_cfunction<frame_stats>(), METH_NOARGS, "statistics of the last frame, and loop totals"},
    {"call_in_thread", as_cfunction<call_in_thread>(), METH_FASTCALL | METH_KEYWORDS,
     "call_in_thread(fn, *args, timeout=None): fn(*args) on a worker; only this tasklet waits"},
    {"sleep_in_worker", as_cfunction<sleep_in_worker>(), METH_FASTCALL | METH_KEYWORDS,
     "sleep_in_worker(seconds, timeout=None): a C++ request that blocks a worker that long"},
    {"hold_for_completions", as_cfunction<hold_for_completions>(), METH_FASTCALL | METH_KEYWORDS,
     "hold_for_completions(count, timeout=30) -> [tasklet, ...]: hold the main thread, dispatching nothing, until "
     "count completions are queued; the tasklets they wake, in completion order (for tests)"},
    {"set_dispatch_strategy", as_cfunction<set_dispatch_strategy>(), METH_O,
     "set_dispatch_strategy(name) -> previous: how completions wake their tasklets"},
    {"dispatch_strategy", as_cfunction<dispatch_strategy>(), METH_NOARGS, "the dispatch strategy in force"},
    {"dispatch_stats", as_cfunction<dispatch_stats>(), METH_NOARGS, "per strategy: latencies (us), drains, completions, lock acquisitions"},
    {"reset_dispatch_stats", as_cfunction<reset_dispatch_stats>(), METH_NOARGS, nullptr},
    {"worker_count", as_cfunction<worker_count>(), METH_NOARGS, "threads in the worker pool (it grows while all are busy)"},
    {"resource_counts", as_cfunction<resource_counts>(), METH_NOARGS,
     "live tasklets, tasklet objects, schedulers, thread states, POSIX timers, stack blocks (worker_* apart), requests in flight"},
    {"sleep", as_cfunction<sleep>(), METH_FASTCALL | METH_KEYWORDS,
     "sleep(seconds): park the current tasklet for that long (a timer, not a busy wait)"},
    {"sleeper_count", as_cfunction<sleeper_count>(), METH_NOARGS, "timer entries of this thread (stale ones included)"},
    {"stack_guard_pages", as_cfunction<stack_guard_pages>(), METH_NOARGS,
     "{'enabled': built with SHARD_STACK_GUARD_PAGES, 'guarded': stacks with a guard page so far}"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_engine", "The native half of uthread: sleep and blocking primitives.", -1,
    module_methods, nullptr, nullptr, nullptr, nullptr,
};

}  // namespace
}  // namespace shard::engine

namespace {
PyObject* init_engine_module() {
  using namespace shard::engine;
  PyObject* stackless = PyImport_ImportModule("stackless");  // creates TaskletExit and the types
  if (stackless == nullptr) return nullptr;
  Py_DECREF(stackless);
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  if (add_type(module, "Semaphore", &SemaphoreType) < 0 || add_type(module, "RLock", &RLockType) < 0 ||
      add_type(module, "Event", &EventType) < 0 || add_type(module, "WaitQueue", &WaitQueueType) < 0 ||
      add_io_hooks(module) < 0 || add_io_wait(module) < 0 ||
      // Tests that measure memory or time skip themselves under ASan.
      PyModule_AddObjectRef(module, "SANITIZED", kSanitized ? Py_True : Py_False) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
}  // namespace

extern "C" PyObject* PyInit__engine() { return shard::engine::guarded<init_engine_module>(); }
