#include "shard/engine/game_loop.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "core/clock.h"
#include "core/cxx_boundary.h"
#include "core/python_errors.h"
#include "shard/engine/dispatcher.h"
#include "core/slice_clock.h"
#include "shard/engine/preemption.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/stackless_errors.h"

namespace shard::engine {
namespace {

// logging.getLogger("shard.loop").log(level, message, exc_info=exc)
void log_python(int level, const std::string& message, PyObject* exc) {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyObject* logging = PyImport_ImportModule("logging");
  PyObject* logger = logging != nullptr ? PyObject_CallMethod(logging, "getLogger", "s", "shard.loop") : nullptr;
  PyObject* log = logger != nullptr ? PyObject_GetAttrString(logger, "log") : nullptr;
  PyObject* args = log != nullptr ? Py_BuildValue("(iss)", level, "%s", message.c_str()) : nullptr;
  PyObject* kwargs = args != nullptr ? Py_BuildValue("{s:O}", "exc_info", exc != nullptr ? exc : Py_False) : nullptr;
  PyObject* result = kwargs != nullptr ? PyObject_Call(log, args, kwargs) : nullptr;
  if (result == nullptr) PyErr_WriteUnraisable(nullptr);  // logging itself failed: say so on stderr
  Py_XDECREF(result);
  Py_XDECREF(kwargs);
  Py_XDECREF(args);
  Py_XDECREF(log);
  Py_XDECREF(logger);
  Py_XDECREF(logging);
  PyErr_Restore(type, value, tb);
}

constexpr int kLogError = 40;
constexpr int kLogWarning = 30;

std::string describe(PyObject* tasklet) {
  PyObject* repr = tasklet != nullptr ? PyObject_Repr(tasklet) : nullptr;
  const char* text = repr != nullptr ? PyUnicode_AsUTF8(repr) : nullptr;
  std::string result = text != nullptr ? text : "<tasklet>";
  Py_XDECREF(repr);
  PyErr_Clear();
  return result;
}

// The Python-level SIGINT/SIGTERM handler while the loop runs.
PyObject* on_stop_signal(PyObject*, PyObject* const*, Py_ssize_t) {
  GameLoop::instance().stop();
  Py_RETURN_NONE;
}

PyMethodDef stop_signal_def = {"_stop_game_loop", as_cfunction<on_stop_signal>(),
                               METH_FASTCALL, "SIGINT/SIGTERM: stop the game loop at the end of the frame"};

// threading.main_thread().ident: signal handlers and the wakeup fd belong to it.
unsigned long main_thread_id() {
  PyObject* threading = PyImport_ImportModule("threading");
  PyObject* main = threading != nullptr ? PyObject_CallMethod(threading, "main_thread", nullptr) : nullptr;
  PyObject* ident = main != nullptr ? PyObject_GetAttrString(main, "ident") : nullptr;
  unsigned long id = ident != nullptr ? PyLong_AsUnsignedLong(ident) : 0;
  Py_XDECREF(ident);
  Py_XDECREF(main);
  Py_XDECREF(threading);
  PyErr_Clear();
  return id;
}

}  // namespace

GameLoop& GameLoop::instance() {
  static GameLoop* loop = new GameLoop();  // never destroyed: its fd is handed to workers
  return *loop;
}

GameLoop::GameLoop() : python_ticks_(PyList_New(0)), services_(PyList_New(0)) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

void GameLoop::set_fps(double fps) { fps_.store(std::clamp(fps, 0.1, 10000.0)); }

void GameLoop::stop() {
  stop_requested_.store(true);
  wake();
}

void GameLoop::wake() {
  uint64_t one = 1;
  [[maybe_unused]] ssize_t written = ::write(wake_fd_, &one, sizeof one);
}

int GameLoop::add_tick(PyObject* callable) { return PyList_Append(python_ticks_, callable); }

void GameLoop::add_native_tick(NativeTick fn, void* context) { native_ticks_.emplace_back(fn, context); }

void GameLoop::remove_native_tick(NativeTick fn, void* context) {
  std::erase(native_ticks_, std::pair<NativeTick, void*>(fn, context));
}

int GameLoop::remove_tick(PyObject* callable) {
  Py_ssize_t index = PySequence_Index(python_ticks_, callable);
  if (index < 0) return -1;
  return PySequence_DelItem(python_ticks_, index);
}

int GameLoop::register_service(PyObject* tasklet) { return PyList_Append(services_, tasklet); }

PyObject* GameLoop::be_nice() {
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  // Outside the frames (also while the loop shuts down), or on another
  // thread: an ordinary round-robin yield.
  if (!in_frames_ || sched != sched_) return sched->schedule(false, Py_None);
  Tasklet* self = sched_->current_tasklet();
  uint64_t token = sched_->prepare_park();
  yielders_.emplace_back(Py_NewRef(reinterpret_cast<PyObject*>(self)), token);
  bool timed_out = false;
  return sched_->park(token, 0, &timed_out);
}

int GameLoop::wake_yielders() {
  std::vector<std::pair<PyObject*, uint64_t>> yielders;
  yielders.swap(yielders_);
  int woken = 0;
  for (auto& [tasklet, token] : yielders) {
    if (Scheduler::wake(reinterpret_cast<Tasklet*>(tasklet), token)) ++woken;
    Py_DECREF(tasklet);
  }
  return woken;
}

// ---------------------------------------------------------------- running

PyObject* GameLoop::run() {
  if (running_) {
    PyErr_SetString(PyExc_RuntimeError, "the game loop is already running");
    return nullptr;
  }
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  if (PyThread_get_thread_ident() != main_thread_id() || sched->current_tasklet() != sched->main()) {
    PyErr_SetString(PyExc_RuntimeError, "the game loop runs on the main tasklet of the main thread");
    return nullptr;
  }
  sched_ = sched;
  if (!install_signal_handlers()) return nullptr;  // all or nothing
  running_ = true;
  stop_requested_.store(false);
  Dispatcher& dispatcher = Dispatcher::instance();
  dispatcher.set_loop_wake_fd(wake_fd_);
  sched_->set_loop_driven(true);
  sched_->set_error_sink([this](Tasklet* t, PyObject* exc) { log_tasklet_error(reinterpret_cast<PyObject*>(t), exc); });
  run_frames();
  in_frames_ = false;
  // Whatever ended the frames (stop, SystemExit, an error), everything set up
  // above is undone here; the error stays set.
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  // No next frame will wake them: tasklets that yielded in the last one go
  // back to the runnable ring, so a later stackless.run() runs them.
  wake_yielders();
  shutdown_services();
  sched_->set_error_sink(nullptr);
  sched_->set_loop_driven(false);
  dispatcher.set_loop_wake_fd(-1);
  running_ = false;
  restore_signal_handlers();
  PyErr_Restore(type, value, tb);
  if (PyErr_Occurred()) return nullptr;
  Py_RETURN_NONE;
}

void GameLoop::run_frames() noexcept {
  try {
    PreemptionScope long_runs;
    if (!long_runs.arm_report(sched_, static_cast<int64_t>(long_run_limit_ms_ * 1e6),
                              [this](int64_t ran) { report_long_run(ran); })) {
      return;  // OSError: no timer for the long-run log
    }
    int64_t deadline = now_ns();
    in_frames_ = true;
    while (!stop_requested_.load() && !PyErr_Occurred()) frame(&deadline);
    return;
  } catch (...) {
    capture_current_exception();
  }
  raise_captured_exception();
}

void GameLoop::frame(int64_t* deadline) {
  FrameStats stats;
  stats.frame = last_.frame + 1;
  const int64_t period = static_cast<int64_t>(1e9 / fps_.load());
  const int64_t start = now_ns();
  Dispatcher& dispatcher = Dispatcher::instance();

  if (!wait_until(*deadline, period, stats)) return;  // 1 (a signal handler raised: the loop ends)
  int64_t t = now_ns();
  stats.wait_ns = t - start - stats.wait_run_ns;
  SliceClock::begin(t);  // the main tasklet's own "slice" starts now

  stats.dispatched = dispatcher.drain();  // 2
  int64_t t2 = now_ns();
  stats.dispatch_ns = t2 - t;

  stats.woken = sched_->wake_due_timers(t2);  // 3
  stats.woken += wake_yielders();
  int64_t t3 = now_ns();
  stats.timers_ns = t3 - t2;

  const int64_t next_deadline = *deadline + period;  // 4
  int64_t budget = std::min<int64_t>(static_cast<int64_t>(period * run_budget_fraction_.load()),
                                     std::max<int64_t>(next_deadline - t3, 0));
  stats.run_budget_ns = budget;
  uint64_t switches = sched_->switches();
  if (!run_tasklets(budget)) return;  // SystemExit or KeyboardInterrupt: the loop ends now
  int64_t t4 = now_ns();
  stats.run_ns = t4 - t3;
  stats.switches += sched_->switches() - switches;
  Scheduler::LongestSlice longest = sched_->take_longest_slice();
  stats.longest_slice_ns = longest.ns;
  stats.longest_slice_tasklet = longest.tasklet;

  run_ticks(stats, period / 1e9);  // 5
  int64_t end = now_ns();
  stats.tick_ns = end - t4;
  stats.frame_ns = end - start;
  stats.runnable = sched_->runcount();
  stats.alive = sched_->tasklets_alive();
  busy_ns_ += end - t + stats.wait_run_ns;

  if (end > next_deadline) {
    stats.overrun = true;
    ++overruns_;
    *deadline = end;  // start the next frame at once, and do not try to catch up
  } else {
    *deadline = next_deadline;
  }
  Py_XDECREF(last_.longest_slice_tasklet);
  last_ = stats;
}

bool GameLoop::run_tasklets(int64_t budget_ns) {
  Scheduler::RunOptions options;
  options.soft = true;
  options.totaltimeout_us = std::max<int64_t>(budget_ns / 1000, 1);
  PyObject* result = sched_->run_watchdog(options);
  if (result == nullptr) {
    // An error passed to the main tasklet (SystemExit, KeyboardInterrupt) ends the loop.
    if (!PyErr_ExceptionMatches(PyExc_SystemExit) && !PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
      PyObject* error = take_exception();
      log_python(kLogError, "an error reached the game loop", error);
      Py_XDECREF(error);
    }
  }
  Py_XDECREF(result);
  return !PyErr_Occurred();
}

bool GameLoop::run_woken_while_waiting(int64_t deadline, int64_t period, FrameStats& stats) {
  if (sched_->runcount() <= 1) return true;  // only the loop's own tasklet: nothing was woken
  const int64_t started = now_ns();
  // The frame's own run budget, and never past the deadline: phases 2-5 start
  // on time. What is left over runs in phase 4.
  const int64_t budget = std::min<int64_t>(static_cast<int64_t>(period * run_budget_fraction_.load()),
                                           deadline - started);
  if (budget <= 0) return true;
  SliceClock::begin(started);
  const uint64_t switches = sched_->switches();
  const bool go_on = run_tasklets(budget);
  stats.switches += sched_->switches() - switches;
  stats.wait_run_ns += now_ns() - started;
  ++stats.wait_runs;
  return go_on;
}

bool GameLoop::wait_until(int64_t deadline, int64_t period, FrameStats& stats) {
  Dispatcher& dispatcher = Dispatcher::instance();
  for (;;) {
    int64_t left = deadline - now_ns();
    if (left <= 0 || stop_requested_.load()) return true;
    pollfd fds[2] = {{wake_fd_, POLLIN, 0}, {signal_fd_[0], POLLIN, 0}};
    timespec timeout{static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
    int ready;
    Py_BEGIN_ALLOW_THREADS
    ready = ppoll(fds, signal_fd_[0] >= 0 ? 2 : 1, &timeout, nullptr);
    Py_END_ALLOW_THREADS
    if (ready <= 0) continue;  // timed out (loop checks the deadline) or EINTR
    if (fds[1].revents & POLLIN) {
      char buffer[64];
      while (::read(signal_fd_[0], buffer, sizeof buffer) > 0) {
      }
      if (PyErr_CheckSignals() < 0) return false;
    }
    if (fds[0].revents & POLLIN) {
      uint64_t count;
      [[maybe_unused]] ssize_t got = ::read(wake_fd_, &count, sizeof count);
      // Mid-frame dispatch: main_thread_callback dispatches here; a
      // pending_call drain runs now rather than at the next bytecode.
      Strategy s = dispatcher.strategy();
      if (s == Strategy::kMainThreadCallback) dispatcher.drain();
      if (s == Strategy::kPendingCall && Py_MakePendingCalls() < 0) PyErr_Clear();
      // These strategies exist to answer IO at once: the tasklets they woke
      // run now, in the frame's idle time, not at the next frame boundary
      // (a request through a node costs its work, not up to a frame).
      if ((s == Strategy::kMainThreadCallback || s == Strategy::kPendingCall) &&
          !run_woken_while_waiting(deadline, period, stats)) {
        return false;
      }
    }
  }
}

void GameLoop::run_ticks(FrameStats& stats, double dt) {
  for (std::size_t i = 0; i < native_ticks_.size(); ++i) {  // a hook may remove itself
    native_ticks_[i].first(native_ticks_[i].second, stats.frame, dt);
  }
  PyObject* hooks = PySequence_List(python_ticks_);  // hooks may add or remove hooks
  if (hooks == nullptr) return;
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(hooks); ++i) {
    PyObject* hook = PyList_GET_ITEM(hooks, i);
    PyObject* result = PyObject_CallFunction(hook, "Kd", static_cast<unsigned long long>(stats.frame), dt);
    if (result == nullptr) {
      PyObject* error = take_exception();
      log_python(kLogError, "tick hook " + describe(hook) + " raised", error);
      Py_XDECREF(error);
    }
    Py_XDECREF(result);
  }
  Py_DECREF(hooks);
}

// ---------------------------------------------------------------- reporting

void GameLoop::log_tasklet_error(PyObject* tasklet, PyObject* exc) {
  log_python(kLogError, "tasklet " + describe(tasklet) + " died with an uncaught exception", exc);
}

void GameLoop::report_long_run(int64_t ran_ns) {
  // At a safe point inside the long-running tasklet: its own stack is current.
  PyObject* traceback = PyImport_ImportModule("traceback");
  PyObject* lines = traceback != nullptr ? PyObject_CallMethod(traceback, "format_stack", nullptr) : nullptr;
  PyObject* empty = PyUnicode_FromString("");
  PyObject* text = lines != nullptr && empty != nullptr ? PyUnicode_Join(empty, lines) : nullptr;
  const char* stack = text != nullptr ? PyUnicode_AsUTF8(text) : nullptr;
  std::string message = "tasklet " + describe(reinterpret_cast<PyObject*>(sched_->current_tasklet())) +
                        " has run " + std::to_string(ran_ns / 1'000'000) + " ms without switching:\n" +
                        (stack != nullptr ? stack : "(no traceback)");
  PyErr_Clear();
  Py_XDECREF(text);
  Py_XDECREF(empty);
  Py_XDECREF(lines);
  Py_XDECREF(traceback);
  log_python(kLogWarning, message, nullptr);
}

// ---------------------------------------------------------------- shutdown

void GameLoop::shutdown_services() {
  PyObject* services = PySequence_List(services_);
  if (services == nullptr) {
    PyErr_Clear();
    return;
  }
  for (Py_ssize_t i = 0; i < PyList_GET_SIZE(services); ++i) {
    PyObject* result = PyObject_CallMethod(PyList_GET_ITEM(services, i), "kill", nullptr);
    if (result == nullptr) {
      log_python(kLogError, "killing service tasklet " + describe(PyList_GET_ITEM(services, i)) + " failed", nullptr);
      PyErr_Clear();
    }
    Py_XDECREF(result);
  }
  Py_DECREF(services);
  PySequence_DelSlice(services_, 0, PY_SSIZE_T_MAX);
}

bool GameLoop::install_signal_handlers() {
  // Only the main thread may own Python signal handlers and the wakeup fd.
  // All or nothing: a step that fails undoes the ones before it (restore
  // puts back exactly what was recorded), so a loop that could not start
  // leaves no handler, wakeup fd or pipe behind.
  if (pipe2(signal_fd_, O_NONBLOCK | O_CLOEXEC) != 0) {
    PyErr_SetFromErrno(PyExc_OSError);
    signal_fd_[0] = signal_fd_[1] = -1;
    return false;
  }
  PyObject* signal = PyImport_ImportModule("signal");
  PyObject* handler = signal != nullptr ? PyCFunction_New(&stop_signal_def, nullptr) : nullptr;
  old_wakeup_fd_ = handler != nullptr ? PyObject_CallMethod(signal, "set_wakeup_fd", "i", signal_fd_[1]) : nullptr;
  bool ok = old_wakeup_fd_ != nullptr;
  const int signals[2] = {SIGINT, SIGTERM};
  for (int i = 0; i < 2 && ok; ++i) {
    old_handlers_[i] = PyObject_CallMethod(signal, "signal", "iO", signals[i], handler);
    ok = old_handlers_[i] != nullptr;
  }
  Py_XDECREF(handler);
  Py_XDECREF(signal);
  if (!ok) restore_signal_handlers();  // keeps the error
  return ok;
}

void GameLoop::restore_signal_handlers() {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyObject* signal = PyImport_ImportModule("signal");
  const int signals[2] = {SIGINT, SIGTERM};
  for (int i = 0; i < 2; ++i) {
    if (signal != nullptr && old_handlers_[i] != nullptr) {
      Py_XDECREF(PyObject_CallMethod(signal, "signal", "iO", signals[i], old_handlers_[i]));
    }
    Py_CLEAR(old_handlers_[i]);
  }
  if (signal != nullptr && old_wakeup_fd_ != nullptr) {
    Py_XDECREF(PyObject_CallMethod(signal, "set_wakeup_fd", "O", old_wakeup_fd_));
  }
  Py_CLEAR(old_wakeup_fd_);
  Py_XDECREF(signal);
  for (int& fd : signal_fd_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  PyErr_Clear();
  PyErr_Restore(type, value, tb);
}

}  // namespace shard::engine
