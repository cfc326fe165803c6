#include "shard/engine/handoff.h"

#include <chrono>

namespace shard::engine {

void Handoff::push(Tasklet* t) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(t);
    pending_.store(true, std::memory_order_release);
  }
  ready_.notify_one();
}

void Handoff::poke() {
  {
    std::lock_guard lock(mutex_);
    poked_ = true;
  }
  ready_.notify_one();
}

std::vector<Tasklet*> Handoff::take_all() {
  std::vector<Tasklet*> taken;
  std::lock_guard lock(mutex_);
  taken.swap(queue_);
  pending_.store(false, std::memory_order_relaxed);
  return taken;
}

void Handoff::wait_until(int64_t deadline_ns) {
  std::unique_lock lock(mutex_);
  ready_.wait_until(lock, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(deadline_ns)),
                    [this] { return !queue_.empty() || poked_; });
  poked_ = false;
}

}  // namespace shard::engine
