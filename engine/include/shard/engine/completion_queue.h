#pragma once
// Finished requests on their way back to the main thread: a lock-free
// multi-producer, single-consumer queue. Workers push (a CAS on the head);
// the consumer takes everything at once and gets it in completion order.
// Nothing here allocates, so a drain cannot fail halfway.

#include <atomic>
#include <memory>

#include "shard/engine/request.h"

namespace shard::engine {

class CompletionQueue final {
 public:
  ~CompletionQueue();
  // Any thread. Returns true when the queue was empty before (the first
  // completion of a batch, which wakes or schedules a drain).
  bool push(std::shared_ptr<Request> request);
  // The consumer: every queued request, oldest completion first, as a list
  // linked through next_completed; each node still owns itself until pop().
  Request* take_all();
  // Unlinks the first node of such a list: the caller owns it now.
  static std::shared_ptr<Request> pop(Request** list);
  bool empty() const { return head_.load(std::memory_order_acquire) == nullptr; }
  // The consumer only: the queued requests, newest first, left in the queue
  // (nodes below the head change only in take_all, the consumer's own call).
  const Request* newest() const { return head_.load(std::memory_order_acquire); }

 private:
  std::atomic<Request*> head_{nullptr};  // newest first
};

}  // namespace shard::engine
