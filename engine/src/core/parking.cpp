#include "shard/engine/parking.h"

#include "shard/engine/scheduler.h"

namespace shard::engine {

uint64_t Parking::begin_wait(Tasklet* t) {
  uint64_t token = ++next_token_;
  t->timed_out_ = false;
  t->wait_token_.store(token, std::memory_order_release);
  return token;
}

void Parking::add_deadline(Tasklet* t, uint64_t token, int64_t deadline_ns) {
  timers_.push(deadline_ns, t, token);
  ++timed_waits_;
}

void Parking::end_timed_wait() {
  --timed_waits_;
  // A wait that ended early leaves its timer entry behind; drop such entries
  // in bulk once they are most of the heap, so long timeouts cannot pile up.
  if (timers_.size() >= 64 && timers_.size() > 2 * timed_waits_) timers_.drop_stale();
}

bool Parking::wake(Tasklet* t, uint64_t token) {
  uint64_t expected = token;
  if (token == 0 || !t->wait_token_.compare_exchange_strong(expected, 0)) return false;
  t->notified_token_ = token;
  Scheduler::make_runnable(t);
  return true;
}

int Parking::wake_due(int64_t now) {
  int woken = 0;
  while (!timers_.empty() && timers_.next_deadline() <= now) {
    TimerHeap::Entry e = timers_.pop();
    uint64_t expected = e.token;
    if (e.tasklet->wait_token_.compare_exchange_strong(expected, 0)) {
      e.tasklet->timed_out_ = true;
      Scheduler::make_runnable(e.tasklet);
      ++woken;
    }
    Py_DECREF(e.tasklet);
  }
  return woken;
}

}  // namespace shard::engine
