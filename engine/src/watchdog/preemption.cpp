#include "shard/engine/preemption.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>

#include "core/cxx_boundary.h"
#include "core/frame_internals.h"
#include "core/slice_clock.h"
#include "shard/engine/scheduler.h"

namespace shard::engine {
namespace {

struct ThreadPreemption {
  std::atomic<bool> active{false};
  std::atomic<bool> trace_armed{false};
  std::atomic<int64_t> timeout_ns{0};
  std::atomic<int64_t> deadline_ns{0};
  std::atomic<int64_t> report_ns{0};      // report-only mode: the long-run limit
  std::atomic<int64_t> reported_slice{-1};  // the slice (by its start) reported already
  std::function<void(int64_t)> report;
  PyThreadState* tstate = nullptr;
  Scheduler* sched = nullptr;
  timer_t timer{};
  bool timer_created = false;

  ThreadPreemption() = default;
  ThreadPreemption(const ThreadPreemption&) = delete;
  ThreadPreemption& operator=(const ThreadPreemption&) = delete;
  // The timer is made on the thread's first timed run() and kept for the
  // next; it goes with the thread. (Each holds a queued-signal slot of the
  // user's RLIMIT_SIGPENDING until deleted.)
  ~ThreadPreemption();
};

thread_local ThreadPreemption tls;
std::atomic<std::size_t> timers_alive_count{0};

ThreadPreemption::~ThreadPreemption() {
  if (!timer_created) return;
  timer_delete(timer);
  timers_alive_count.fetch_sub(1, std::memory_order_relaxed);
}

int preemption_signal() { return SIGRTMIN + 4; }

int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

void disarm_trace(PyThreadState* tstate);

// The one-shot trace function: called by the eval loop between two bytecodes
// (installed as trace_function, behind the C++/Python boundary).
int preempt_at_safe_point(PyObject*, PyFrameObject*, int, PyObject*) {
  PyThreadState* tstate = PyThreadState_Get();
  disarm_trace(tstate);
  if (tls.sched == nullptr) return 0;
  if (tls.report) {
    int64_t start = SliceClock::start();
    int64_t ran = monotonic_ns() - start;
    if (ran >= tls.report_ns.load() && tls.reported_slice.exchange(start) != start) tls.report(ran);
    return PyErr_Occurred() ? -1 : 0;
  }
  PyObject* result = tls.sched->preempt();
  if (result == nullptr) return -1;  // e.g. killed while it was interrupted
  Py_DECREF(result);
  return 0;
}

constexpr Py_tracefunc trace_function = guarded<preempt_at_safe_point>;

void disarm_trace(PyThreadState* tstate) {
  if (!tls.trace_armed.exchange(false)) return;
  if (tstate->c_tracefunc == trace_function) {
    tstate->c_tracefunc = nullptr;
    tstate->c_traceobj = nullptr;
    if (tstate->tracing == 0) tstate->cframe->use_tracing = tstate->c_profilefunc ? 255 : 0;
  }
  shard_eval_breaker_recompute(tstate->interp);
}

// Async-signal context: atomics, clock_gettime and plain stores only.
void on_timer_signal(int, siginfo_t*, void*) {
  int saved_errno = errno;
  if (tls.active.load(std::memory_order_relaxed) && !tls.trace_armed.load(std::memory_order_relaxed)) {
    int64_t now = monotonic_ns();
    int64_t deadline = tls.deadline_ns.load(std::memory_order_relaxed);
    int64_t timeout = tls.timeout_ns.load(std::memory_order_relaxed);
    int64_t start = SliceClock::start();
    int64_t ran = now - start;
    int64_t report = tls.report_ns.load(std::memory_order_relaxed);
    bool due = (deadline != 0 && now >= deadline) || (timeout != 0 && ran >= timeout) ||
               (report != 0 && ran >= report && tls.reported_slice.load(std::memory_order_relaxed) != start);
    PyThreadState* tstate = tls.tstate;
    // A debugger, tracer or profiler owns the slot: leave it alone (the
    // watchdog then acts only at switch points).
    if (due && tstate->c_tracefunc == nullptr && tstate->c_profilefunc == nullptr &&
        tstate->tracing == 0) {
      tls.trace_armed.store(true, std::memory_order_relaxed);
      tstate->c_traceobj = nullptr;
      tstate->c_tracefunc = trace_function;
      tstate->cframe->use_tracing = 255;
      // Not shard_eval_breaker_set(): with nothing pending the breaker would
      // stay raised, and a trace armed while C code held the GIL would spin
      // at the next function's RESUME (frame_internals.h).
      shard_eval_breaker_set_as_signal(tstate->interp);
    }
  }
  errno = saved_errno;
}

// OSError(error, "what: strerror[; hint]"), as PyErr_SetFromErrno would, with context.
void set_os_error(int error, const char* what, const char* hint) {
  std::string text = std::string(what) + ": " + std::strerror(error);
  if (hint != nullptr) text += std::string("; ") + hint;
  PyObject* args = Py_BuildValue("(is)", error, text.c_str());
  if (args != nullptr) PyErr_SetObject(PyExc_OSError, args);
  Py_XDECREF(args);
}

// 0, or the errno of the failed sigaction (installed once per process).
int install_handler_once() {
  static const int error = [] {
    struct sigaction action;
    std::memset(&action, 0, sizeof action);
    action.sa_sigaction = on_timer_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    return sigaction(preemption_signal(), &action, nullptr) == 0 ? 0 : errno;
  }();
  return error;
}

// The signal handler and this thread's timer; false with OSError set.
bool ready_timer() {
  if (int error = install_handler_once(); error != 0) {
    set_os_error(error, "installing the watchdog's signal handler (sigaction)", nullptr);
    return false;
  }
  if (tls.timer_created) return true;
  sigevent event;
  std::memset(&event, 0, sizeof event);
  event.sigev_notify = SIGEV_THREAD_ID;
  event.sigev_signo = preemption_signal();
  event._sigev_un._tid = gettid();
  if (timer_create(CLOCK_MONOTONIC, &event, &tls.timer) != 0) {
    int error = errno;
    set_os_error(error, "creating this thread's watchdog timer (timer_create)",
                 error == EAGAIN ? "each thread that uses one holds a queued signal of RLIMIT_SIGPENDING (ulimit -i)"
                                 : nullptr);
    return false;
  }
  tls.timer_created = true;
  timers_alive_count.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void set_timer_interval(int64_t interval_ns) {
  itimerspec spec{};
  spec.it_interval.tv_sec = interval_ns / 1'000'000'000;
  spec.it_interval.tv_nsec = interval_ns % 1'000'000'000;
  spec.it_value = spec.it_interval;
  timer_settime(tls.timer, 0, &spec, nullptr);
}

}  // namespace

std::size_t Preemption::timers_alive() { return timers_alive_count.load(std::memory_order_relaxed); }

bool PreemptionScope::arm(Scheduler* sched, int64_t timeout_ns, int64_t deadline_ns) {
  if (tls.active.load()) return true;
  if (!ready_timer()) return false;
  tls.tstate = sched->tstate();
  tls.sched = sched;
  tls.timeout_ns.store(timeout_ns);
  tls.deadline_ns.store(deadline_ns);
  SliceClock::begin(monotonic_ns());
  tls.active.store(true);
  // Check a few times per budget: a busy tasklet is stopped within ~1.25x its
  // budget, without flooding the thread with signals.
  int64_t budget = timeout_ns != 0 ? timeout_ns : std::max<int64_t>(deadline_ns - monotonic_ns(), 0);
  set_timer_interval(std::clamp<int64_t>(budget / 4, 50'000, 10'000'000));
  armed_ = true;
  return true;
}

bool PreemptionScope::arm_report(Scheduler* sched, int64_t limit_ns, std::function<void(int64_t)> report) {
  if (limit_ns <= 0 || tls.active.load()) return true;
  if (!ready_timer()) return false;
  tls.tstate = sched->tstate();
  tls.sched = sched;
  tls.report = std::move(report);
  tls.report_ns.store(limit_ns);
  tls.timeout_ns.store(0);
  tls.deadline_ns.store(0);
  SliceClock::begin(monotonic_ns());
  tls.active.store(true);
  set_timer_interval(std::clamp<int64_t>(limit_ns / 4, 1'000'000, 50'000'000));
  armed_ = true;
  return true;
}

PreemptionScope::~PreemptionScope() {
  if (!armed_) return;
  set_timer_interval(0);
  tls.active.store(false);
  disarm_trace(tls.tstate);
  tls.sched = nullptr;
  tls.report = nullptr;
  tls.report_ns.store(0);
}

}  // namespace shard::engine
