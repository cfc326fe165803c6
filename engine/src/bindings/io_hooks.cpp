#include "bindings/io_hooks.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>

#include "bindings/arguments.h"
#include "core/clock.h"
#include "shard/engine/asio.h"
#include "shard/engine/await_completion.h"
#include "shard/engine/io_pool.h"
#include "shard/engine/resolve.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/waiters.h"

namespace shard::engine {
namespace {

namespace asio = boost::asio;

// io_timer()'s own counts: what reached the Asio timers themselves.
std::atomic<uint64_t> timers_started{0};
std::atomic<uint64_t> timers_expired{0};
std::atomic<uint64_t> timers_aborted{0};  // their wait ended by timer.cancel()

// One steady_timer wait. Initiated and cancelled on its context's thread
// (posted there, in order): the timer object itself is not thread-safe.
struct TimerWait {
  explicit TimerWait(std::shared_ptr<asio::io_context> c) : context(std::move(c)), timer(*context) {}
  std::shared_ptr<asio::io_context> context;  // outlives the timer, even past a stop()
  asio::steady_timer timer;
  bool cancelled = false;  // a cancel that ran before the initiation
};

std::chrono::nanoseconds to_duration(double seconds) {
  return std::chrono::nanoseconds(std::llround(std::max(0.0, seconds) * 1e9));
}

// io_timer(seconds, timeout=None): waits for an asio::steady_timer on an IO
// thread; only the calling tasklet is parked. TimeoutError past `timeout`
// (the timer cancelled), OSError(ECANCELED) when the IO threads stop.
PyObject* io_timer(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* parsed[2] = {nullptr, nullptr};
  if (!parse_arguments("io_timer", args, nargs, kwnames, {"seconds", "timeout"}, 1, parsed)) return nullptr;
  double seconds = PyFloat_AsDouble(parsed[0]);
  if (seconds == -1 && PyErr_Occurred()) return nullptr;
  if (std::isnan(seconds)) return PyErr_Format(PyExc_ValueError, "io_timer() of NaN seconds");
  double timeout;
  if (!parse_timeout(parsed[1], &timeout)) return nullptr;
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  sched->set_call_sp(stack_top(args, nargs, kwnames));

  std::shared_ptr<asio::io_context> context = IoPool::instance().next_context();
  if (context == nullptr) return raise_wait_error(WaitError::kStopped, "io_timer");
  auto wait = std::make_shared<TimerWait>(std::move(context));
  const auto duration = to_duration(seconds);
  auto start = [wait, duration](Completer done) {
    asio::post(*wait->context, [wait, duration, done] {
      if (wait->cancelled) return done(std::make_error_code(std::errc::operation_canceled));
      timers_started.fetch_add(1);
      wait->timer.expires_after(duration);
      wait->timer.async_wait([wait, done](const boost::system::error_code& error) {
        (error == asio::error::operation_aborted ? timers_aborted : timers_expired).fetch_add(1);
        done(to_error_code(error));
      });
    });
  };
  auto cancel = [wait] {
    asio::post(*wait->context, [wait] {
      wait->cancelled = true;
      wait->timer.cancel();
    });
  };
  int64_t deadline = timeout >= 0 ? now_ns() + std::max<int64_t>(1, std::llround(timeout * 1e9)) : 0;
  std::error_code error = await_completion(start, cancel, deadline);
  if (error) return raise_wait_error(error, "io_timer");
  Py_RETURN_NONE;
}

// io_resolve(host, port, timeout=None): [(address, port), ...] from Asio's
// resolver on an IO thread (shard::engine::resolve); only this tasklet waits.
PyObject* io_resolve(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* parsed[3] = {nullptr, nullptr, nullptr};
  if (!parse_arguments("io_resolve", args, nargs, kwnames, {"host", "port", "timeout"}, 2, parsed)) return nullptr;
  const char* host = PyUnicode_AsUTF8(parsed[0]);
  if (host == nullptr) return nullptr;
  PyObject* port_text = PyObject_Str(parsed[1]);
  const char* port = port_text != nullptr ? PyUnicode_AsUTF8(port_text) : nullptr;
  std::string service = port != nullptr ? port : "";
  Py_XDECREF(port_text);
  if (port == nullptr) return nullptr;
  double timeout;
  if (!parse_timeout(parsed[2], &timeout)) return nullptr;
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  sched->set_call_sp(stack_top(args, nargs, kwnames));
  int64_t deadline = timeout >= 0 ? now_ns() + std::max<int64_t>(1, std::llround(timeout * 1e9)) : 0;
  Outcome<std::vector<ResolvedEndpoint>> found = resolve(host, service, deadline);
  if (!found) return raise_wait_error(found.error, "io_resolve");
  PyObject* list = PyList_New(0);
  for (const ResolvedEndpoint& e : *found.value) {
    PyObject* item = list != nullptr ? Py_BuildValue("(si)", e.address.c_str(), static_cast<int>(e.port)) : nullptr;
    if (item == nullptr || PyList_Append(list, item) < 0) Py_CLEAR(list);
    Py_XDECREF(item);
  }
  return list;
}

PyObject* io_stats(PyObject*, PyObject*) {
  IoPool& pool = IoPool::instance();
  IoPool::Stats s = pool.stats();
  auto k = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  return Py_BuildValue("{s:i,s:O,s:n,s:K,s:K,s:K,s:K,s:K,s:K}", "threads", pool.threads(), "running",
                       pool.running() ? Py_True : Py_False, "waits", static_cast<Py_ssize_t>(s.waits), "cancellations",
                       k(s.cancellations), "lock_acquisitions", k(s.lock_acquisitions), "handler_errors",
                       k(s.handler_errors), "timers_started", k(timers_started.load()), "timers_expired",
                       k(timers_expired.load()), "timers_aborted", k(timers_aborted.load()));
}

// Stops the IO threads with the interpreter lock released: their last
// completions may need it (worker_acquires_gil, tasklets of other threads).
void stop_io() {
  Py_BEGIN_ALLOW_THREADS
  IoPool::instance().stop();
  Py_END_ALLOW_THREADS
}

PyObject* io_stop(PyObject*, PyObject*) {
  stop_io();
  Py_RETURN_NONE;
}

PyObject* io_start(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* threads_obj = nullptr;
  if (!parse_arguments("io_start", args, nargs, kwnames, {"threads"}, 0, &threads_obj)) return nullptr;
  int threads = 0;
  if (threads_obj != nullptr && threads_obj != Py_None) {
    threads = PyLong_AsLong(threads_obj);
    if (threads == -1 && PyErr_Occurred()) return nullptr;
  }
  if (std::error_code error = IoPool::instance().start(threads)) return raise_wait_error(error, "io_start");
  Py_RETURN_NONE;
}

PyObject* stop_io_at_exit(PyObject*, PyObject*) {
  stop_io();
  Py_RETURN_NONE;
}

PyMethodDef stop_io_at_exit_def = {"_stop_io_at_exit", as_cfunction<stop_io_at_exit>(), METH_NOARGS,
                                   "stops the engine's IO threads at interpreter exit"};

PyMethodDef io_methods[] = {
    {"io_timer", as_cfunction<io_timer>(), METH_FASTCALL | METH_KEYWORDS,
     "io_timer(seconds, timeout=None): wait for an Asio timer on an IO thread; only this tasklet waits"},
    {"io_resolve", as_cfunction<io_resolve>(), METH_FASTCALL | METH_KEYWORDS,
     "io_resolve(host, port, timeout=None): [(address, port), ...] from Asio's resolver; only this tasklet waits"},
    {"io_stats", as_cfunction<io_stats>(), METH_NOARGS,
     "the IO threads: count, waits, cancellations, interpreter-lock acquisitions on them, io_timer counts"},
    {"io_stop", as_cfunction<io_stop>(), METH_NOARGS,
     "stop the IO threads: waits in flight end with OSError(ECANCELED) (tests; the engine stops them at exit)"},
    {"io_start", as_cfunction<io_start>(), METH_FASTCALL | METH_KEYWORDS,
     "io_start(threads=None): start the IO threads again after io_stop() (None: SHARD_IO_THREADS or 2)"},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

bool start_engine_io() {
  if (std::error_code error = IoPool::instance().start()) {
    raise_wait_error(error, "cannot start the engine's IO threads");
    return false;
  }
  // atexit runs before the interpreter finalizes, while threads may still
  // take the lock; LIFO, so before the stackless hook that kills the
  // tasklets: their waits end with OSError(ECANCELED) first.
  PyObject* atexit = PyImport_ImportModule("atexit");
  PyObject* function = atexit != nullptr ? PyCFunction_New(&stop_io_at_exit_def, nullptr) : nullptr;
  PyObject* result = function != nullptr ? PyObject_CallMethod(atexit, "register", "O", function) : nullptr;
  Py_XDECREF(result);
  Py_XDECREF(function);
  Py_XDECREF(atexit);
  return result != nullptr;
}

int add_io_hooks(PyObject* module) { return PyModule_AddFunctions(module, io_methods); }

}  // namespace shard::engine
