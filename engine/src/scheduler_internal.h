#pragma once
// Scheduler internals shared by its implementation files.

#include <chrono>
#include <cstdint>

namespace shard::engine {

class Scheduler;

inline int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace shard::engine
