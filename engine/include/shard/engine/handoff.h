#pragma once
// Thread hand-off: how a tasklet of this thread is made runnable from another
// thread (a channel partner, a notify, a completed request). The other thread
// pushes it here; the owner drains the queue into its runnable ring when it
// next looks for work. The owner may be waiting idle with the GIL released, so
// the queue has its own mutex and condition variable instead of the GIL.
//
// push() and poke() may be called from any thread; the rest only by the owner.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

namespace shard::engine {

struct Tasklet;

class Handoff final {
 public:
  Handoff() = default;
  Handoff(const Handoff&) = delete;
  Handoff& operator=(const Handoff&) = delete;

  // Queues `t` (the caller passes a reference it owns) and wakes the owner.
  void push(Tasklet* t);
  // Wakes the owner's wait without handing anything over.
  void poke();

  // Cheap check for the owner's hot path.
  bool pending() const { return pending_.load(std::memory_order_acquire); }
  // Everything queued so far, oldest first; the caller owns the references.
  std::vector<Tasklet*> take_all();
  // Blocks until something is queued, a poke, or `deadline_ns` (steady
  // clock). Call with the GIL released: the pusher may hold it while it waits
  // for our mutex.
  void wait_until(int64_t deadline_ns);

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<Tasklet*> queue_;  // guarded by mutex_
  bool poked_ = false;           // guarded by mutex_
  std::atomic<bool> pending_{false};
};

}  // namespace shard::engine
