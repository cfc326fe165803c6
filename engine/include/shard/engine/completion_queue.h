#pragma once
// Finished requests on their way back to the main thread: a lock-free
// multi-producer, single-consumer queue. Workers push (a CAS on the head);
// the consumer takes everything at once and gets it in completion order.

#include <atomic>
#include <memory>
#include <vector>

#include "shard/engine/request.h"

namespace shard::engine {

class CompletionQueue final {
 public:
  ~CompletionQueue();
  // Any thread. Returns true when the queue was empty before (the first
  // completion of a batch, which wakes or schedules a drain).
  bool push(std::shared_ptr<Request> request);
  // The consumer: all queued requests, oldest completion first.
  std::vector<std::shared_ptr<Request>> take_all();
  bool empty() const { return head_.load(std::memory_order_acquire) == nullptr; }

 private:
  std::atomic<Request*> head_{nullptr};  // newest first
};

}  // namespace shard::engine
