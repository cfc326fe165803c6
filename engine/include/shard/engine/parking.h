#pragma once
// Parking: the bookkeeping of tasklets that left the runnable ring to wait for
// something other than a channel (a lock, an event, a request, a sleep).
//
// A wait is named by a token. The parked tasklet holds it in wait_token_;
// whoever swaps that back to zero first (a waker on any thread, its deadline, a
// kill) is the one that ends the wait, so a wait ends exactly once. Deadlines
// live in a per-thread TimerHeap; an entry whose wait ended early goes stale and
// is skipped or dropped in bulk.
//
// Owner-thread only (GIL held), except wake(), which any thread holding the
// GIL may call for a tasklet of any thread.

#include <cstddef>
#include <cstdint>

#include "shard/engine/tasklet.h"
#include "shard/engine/timer_heap.h"

namespace shard::engine {

class Parking final {
 public:
  // Starts a wait for `t` (about to park): its new token.
  uint64_t begin_wait(Tasklet* t);
  // The wait has a deadline: `t` is woken at `deadline_ns` unless someone else
  // ends the wait first. Every such wait is closed with end_timed_wait().
  void add_deadline(Tasklet* t, uint64_t token, int64_t deadline_ns);
  void end_timed_wait();

  // Ends `t`'s wait if it is still the one named by `token` and makes `t`
  // runnable in its own thread; false when someone else already ended it.
  static bool wake(Tasklet* t, uint64_t token);
  // Ends the wait of every tasklet whose deadline has come (marking it timed
  // out) and makes it runnable; returns how many.
  int wake_due(int64_t now_ns);

  bool has_deadlines() const { return timed_waits_ > 0 && !timers_.empty(); }
  // The earliest deadline; only when has_deadlines() or timer_count() > 0.
  int64_t next_deadline() const { return timers_.next_deadline(); }
  std::size_t timer_count() const { return timers_.size(); }
  // Drops the deadlines of waits that ended early; returns how many.
  std::size_t drop_stale() { return timers_.drop_stale(); }
  // Forgets every deadline (the thread ended): the entries' tasklets are released.
  void clear() {
    timers_.clear();
    timed_waits_ = 0;
  }

 private:
  TimerHeap timers_;
  std::size_t timed_waits_ = 0;  // waits with a deadline that have not ended yet
  uint64_t next_token_ = 0;
};

}  // namespace shard::engine
