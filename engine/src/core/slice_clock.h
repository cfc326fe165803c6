#pragma once
// When the running tasklet's slice began: the last switch while someone
// watches slices (a timed run(), the game loop's long-run log), or the start of
// a frame. The core stamps it; the watchdog's timer signal handler reads it, so
// it is a per-thread atomic and nothing else.

#include <atomic>
#include <cstdint>

namespace shard::engine {

class SliceClock final {
 public:
  static void begin(int64_t now_ns) { start_.store(now_ns, std::memory_order_relaxed); }
  static int64_t start() { return start_.load(std::memory_order_relaxed); }

 private:
  static inline thread_local std::atomic<int64_t> start_{0};
};

}  // namespace shard::engine
