#pragma once
// The engine's one clock: steady time in nanoseconds (timers, budgets, latencies).

#include <chrono>
#include <cstdint>

namespace shard::engine {

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace shard::engine
