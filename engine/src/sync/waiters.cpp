#include "shard/engine/waiters.h"

#include <algorithm>
#include <cmath>
#include <new>

#include "core/clock.h"
#include "shard/engine/scheduler.h"

namespace shard::engine {

DeferredDecrefs::~DeferredDecrefs() {
  for (std::size_t i = 0; i < count_; ++i) Py_DECREF(inline_[i]);
  for (PyObject* o : more_) Py_DECREF(o);
}

void DeferredDecrefs::add(PyObject* owned) noexcept {
  if (count_ < inline_.size()) {
    inline_[count_++] = owned;
    return;
  }
  try {
    more_.push_back(owned);
  } catch (const std::bad_alloc&) {
    // Out of memory: leaking one reference is safer than running a finalizer
    // in the middle of the operation.
  }
}

Waiters::~Waiters() {
  for (Entry& e : queue_) Py_DECREF(e.tasklet);
}

uint64_t Waiters::prepare() {
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return 0;
  Tasklet* self = sched->current_tasklet();
  try {
    queue_.push_back({self, 0});
  } catch (const std::bad_alloc&) {
    PyErr_NoMemory();
    return 0;
  }
  Py_INCREF(self);
  uint64_t token = sched->prepare_park();
  queue_.back().token = token;
  return token;
}

bool Waiters::wake_one(DeferredDecrefs& later) {
  while (!queue_.empty()) {
    Entry e = queue_.front();
    queue_.pop_front();
    bool woken = Scheduler::wake(e.tasklet, e.token);
    later.add(reinterpret_cast<PyObject*>(e.tasklet));
    if (woken) return true;
  }
  return false;
}

int Waiters::wake_all(DeferredDecrefs& later) {
  int woken = 0;
  while (wake_one(later)) ++woken;
  return woken;
}

void Waiters::forget(Tasklet* t, uint64_t token, DeferredDecrefs& later) {
  auto it = std::find_if(queue_.begin(), queue_.end(),
                         [&](const Entry& e) { return e.tasklet == t && e.token == token; });
  if (it == queue_.end()) return;
  Tasklet* owned = it->tasklet;
  queue_.erase(it);
  later.add(reinterpret_cast<PyObject*>(owned));
}

WaitResult park_until(uint64_t token, double timeout_seconds) {
  Scheduler* sched = Scheduler::existing();  // prepare() made it
  int64_t deadline = 0;
  if (timeout_seconds >= 0) deadline = now_ns() + std::max<int64_t>(1, std::llround(timeout_seconds * 1e9));
  bool timed_out = false;
  PyObject* result = sched->park(token, deadline, &timed_out);
  if (result == nullptr) return WaitResult::kError;
  Py_DECREF(result);
  return timed_out ? WaitResult::kTimedOut : WaitResult::kWoken;
}

bool handed_off(uint64_t token) {
  return Scheduler::existing()->current_tasklet()->notified_token_ == token;
}

bool parse_timeout(PyObject* value, double* seconds) {
  *seconds = -1;
  if (value == nullptr || value == Py_None) return true;
  double t = PyFloat_AsDouble(value);
  if (t == -1 && PyErr_Occurred()) return false;
  if (std::isnan(t) || t < 0) {
    PyErr_SetString(PyExc_ValueError, "timeout must be a non-negative number of seconds or None");
    return false;
  }
  *seconds = t;
  return true;
}

}  // namespace shard::engine
