#include "shard/engine/idle_wake.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace shard::engine {

namespace {

// The steady clock is CLOCK_MONOTONIC, FUTEX_WAIT_BITSET's absolute clock.
long futex(std::atomic<std::uint32_t>& word, int op, std::uint32_t value, const timespec* deadline) {
  static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
  return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), op | FUTEX_PRIVATE_FLAG, value, deadline,
                 nullptr, FUTEX_BITSET_MATCH_ANY);
}

}  // namespace

void IdleWake::poke() {
  if (state_.exchange(kPoked, std::memory_order_acq_rel) == kSleeping) futex(state_, FUTEX_WAKE_BITSET, 1, nullptr);
}

void IdleWake::wait_until(int64_t deadline_ns) {
  std::uint32_t expected = kIdle;
  if (state_.compare_exchange_strong(expected, kSleeping, std::memory_order_acq_rel)) {
    const timespec deadline{static_cast<time_t>(deadline_ns / 1'000'000'000),
                            static_cast<long>(deadline_ns % 1'000'000'000)};
    // EINTR and spurious wake-ups look again; EAGAIN means a poke came first.
    while (state_.load(std::memory_order_acquire) == kSleeping) {
      if (futex(state_, FUTEX_WAIT_BITSET, kSleeping, &deadline) == -1 && errno == ETIMEDOUT) break;
    }
  }
  // A poke is consumed by the wait it ended (or by this one, if it came first).
  state_.store(kIdle, std::memory_order_release);
}

}  // namespace shard::engine
