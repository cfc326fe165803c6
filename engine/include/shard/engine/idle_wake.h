#pragma once
// How another thread wakes a scheduler that waits idle with the GIL released.
//
// A tasklet of another thread is made runnable by putting it straight into its
// thread's runnable ring: rings are only touched with the GIL held, and the
// waker holds it. The owner may be waiting for that with the GIL released,
// though, so the waker pokes it here: a futex word of its own, since the GIL
// is exactly what the owner does not hold while it waits.
//
// A futex rather than a mutex and condition variable: a poke costs one atomic
// exchange, plus one FUTEX_WAKE only while the owner really sleeps; glibc's
// condition variable costs a second FUTEX_WAKE on every wake-up (the waiter
// re-takes the mutex as contended), and the IO threads poke the main thread on
// every batch of completions.
//
// poke() may be called from any thread; wait_until() only by the owner, with
// the GIL released.

#include <atomic>
#include <cstdint>

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
  static constexpr std::uint32_t kIdle = 0, kPoked = 1, kSleeping = 2;
  std::atomic<std::uint32_t> state_{kIdle};
};

}  // namespace shard::engine
