#include "shard/engine/idle_wake.h"

#include <chrono>

namespace shard::engine {

void IdleWake::poke() {
  {
    std::lock_guard lock(mutex_);
    poked_ = true;
  }
  ready_.notify_one();
}

void IdleWake::wait_until(int64_t deadline_ns) {
  std::unique_lock lock(mutex_);
  ready_.wait_until(lock, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline_ns)),
                    [this] { return poked_; });
  poked_ = false;
}

}  // namespace shard::engine
