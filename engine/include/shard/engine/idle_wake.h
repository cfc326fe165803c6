#pragma once
// How another thread wakes a scheduler that waits idle with the GIL released.
//
// A tasklet of another thread is made runnable by putting it straight into its
// thread's runnable ring: rings are only touched with the GIL held, and the
// waker holds it. The owner may be waiting for that with the GIL released,
// though, so the waker pokes it here: a mutex and condition variable of its
// own, since the GIL is exactly what the owner does not hold while it waits.
//
// poke() may be called from any thread; wait_until() only by the owner, with
// the GIL released.

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace shard::engine {

class IdleWake final {
 public:
  IdleWake() = default;
  IdleWake(const IdleWake&) = delete;
  IdleWake& operator=(const IdleWake&) = delete;

  // Ends the owner's current or next wait.
  void poke();
  // Blocks until a poke (one made since the last wait counts) or `deadline_ns`
  // (steady clock).
  void wait_until(int64_t deadline_ns);

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  bool poked_ = false;  // guarded by mutex_
};

}  // namespace shard::engine
