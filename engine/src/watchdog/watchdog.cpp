// stackless.run(): the calling tasklet as watchdog over the runnable ring, with
// optional time budgets (ticks are microseconds).
#include <algorithm>
#include <vector>

#include "core/clock.h"
#include "core/slice_clock.h"
#include "core/switch_hooks.h"
#include "shard/engine/preemption.h"
#include "shard/engine/scheduler.h"

namespace shard::engine {

bool Scheduler::soft_watchdog_due() {
  const Watchdog* w = watchdogs_.timed();
  if (w == nullptr) return false;
  int64_t now = now_ns();
  if (w->deadline_ns != 0 && now >= w->deadline_ns) return true;
  return w->soft && w->timeout_ns != 0 && now - SliceClock::start() >= w->timeout_ns;
}

Tasklet* Scheduler::wake_watchdog(Watchdog& w, WakeReason reason) {
  w.reason = reason;
  move_before_head(w.tasklet);
  ring_.set_head(w.tasklet);
  return w.tasklet;
}

// ---------------------------------------------------------------- stackless.run()

PyObject* Scheduler::run_watchdog(const RunOptions& options) {
  Tasklet* self = current_;
  // Only the outermost run() with a timeout sets the pace (Stackless semantics).
  Watchdog w{self, 0, 0, options.soft};
  if (watchdogs_.timed() == nullptr) {
    w.timeout_ns = options.timeout_us * 1000;
    w.deadline_ns = options.totaltimeout_us > 0 ? now_ns() + options.totaltimeout_us * 1000 : 0;
  }
  const bool timed = w.timed();
  // Armed before anything changes: a timer that cannot be made is an OSError
  // from this run(), with the scheduler as it was.
  PreemptionScope preemption;
  if (timed && !options.soft && !preemption.arm(this, w.timeout_ns, w.deadline_ns)) return nullptr;
  watchdogs_.push(w);
  if (timed) SliceClock::begin(now_ns());
  PyObject* result = nullptr;
  for (;;) {
    if (self->in_ring_) remove(self);
    // Sleepers and requests in flight will make tasklets runnable by
    // themselves: wait for them. With threadblock, also wait for other threads
    // to make one of ours runnable. (Asked before looking at the ring: a
    // request that is no longer in flight has put its tasklet there.)
    bool sleepers = expects_work();
    if (ring_.head() == nullptr && (sleepers || options.threadblock) && !idle_wait() && PyErr_Occurred()) {
      insert(self);
      ring_.set_head(self);
      break;
    }
    while (ring_.head() != nullptr && !ensure_stack(ring_.head())) {
    }
    if (ring_.head() == self) {
      // A tasklet that could not get a stack was set aside and made us
      // runnable to get its error (no game loop logging it).
      report_unstartable();
      result = resume_value(self);
      break;
    }
    // With a game loop: logged before the ring runs on (no switch under way
    // here). The log may switch and change the ring: look at it again.
    if (!unstartable_.empty()) {
      report_unstartable();
      continue;
    }
    if (ring_.head() == nullptr) {
      insert(self);
      ring_.set_head(self);
      result = Py_NewRef(Py_None);
      break;
    }
    Py_INCREF(self);
    result = switch_to(ring_.head());
    Py_DECREF(self);
    Watchdog* mine = watchdogs_.find(self);
    // Popped by an outer run() that was woken first: return at once.
    if (result == nullptr || mine == nullptr) break;
    // Woken by the ring emptying while something can still refill it: keep
    // going. Any other wake-up (main.run(), insert()) ends run(), as in Stackless.
    // expects_work() dispatches what finished meanwhile: the tasklets it woke run too.
    bool sleepers_left = expects_work();
    bool woken_left = ring_.size() > (self->in_ring_ ? 1u : 0u);
    if (mine->reason == WakeReason::kRingEmpty && (options.threadblock || sleepers_left || woken_left)) {
      mine->reason = WakeReason::kNone;
      Py_CLEAR(result);  // the next round sets it, or ends with an error and none
      continue;
    }
    break;
  }
  // Leave the watchdog stack (unless an outer run() that was woken first took
  // us off it): ours, and the inner ones above it. An inner run() whose
  // tasklet still waits in it becomes runnable and returns when resumed, as
  // in Stackless; one whose tasklet died is simply dropped.
  Tasklet* interrupted = nullptr;
  if (watchdogs_.find(self) != nullptr) {
    std::vector<Tasklet*> outlived;
    interrupted = watchdogs_.pop_through(self, &outlived);
    for (Tasklet* inner : outlived) {
      if (inner->started_ && !inner->finished_ && !inner->scheduled() && inner != current_) insert(inner);
    }
  }
  if (!self->in_ring_) {
    insert(self);
  }
  ring_.set_head(self);
  if (result != nullptr && interrupted != nullptr) {
    Py_DECREF(result);
    return reinterpret_cast<PyObject*>(interrupted);
  }
  Py_XDECREF(interrupted);
  return result;
}

bool Scheduler::preemption_due(int64_t now) {
  const Watchdog* w = watchdogs_.timed();
  // Under stackless.switch_trap() the interrupt waits, as in Stackless.
  if (w == nullptr || w->soft || current_ == w->tasklet || current_->atomic_ || hooks::switch_trap != 0) return false;
  if (w->deadline_ns != 0 && now >= w->deadline_ns) return true;
  return w->timeout_ns != 0 && now - SliceClock::start() >= w->timeout_ns;
}

PyObject* Scheduler::preempt() {
  // At a safe point in the running tasklet: it is taken out of the ring and
  // handed to the watchdog, which returns it from run().
  if (!preemption_due(now_ns())) Py_RETURN_NONE;
  Tasklet* victim = current_;
  Watchdog& w = *watchdogs_.timed();
  Py_INCREF(victim);
  Py_XSETREF(w.interrupted, victim);
  remove(victim);
  Tasklet* watchdog = wake_watchdog(w, WakeReason::kInterrupted);
  return switch_to(watchdog);
}

}  // namespace shard::engine
