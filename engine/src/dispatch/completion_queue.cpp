#include "shard/engine/completion_queue.h"

#include <algorithm>

namespace shard::engine {

Request::~Request() {
  // The last owner is a Python-side holder or a drain: both hold the GIL.
  Py_XDECREF(callable);
  Py_XDECREF(args);
  Py_XDECREF(result);
  Py_XDECREF(error);
  Py_XDECREF(reinterpret_cast<PyObject*>(waiter));
}

CompletionQueue::~CompletionQueue() { take_all(); }

bool CompletionQueue::push(std::shared_ptr<Request> request) {
  Request* node = request.get();
  node->self_ref = std::move(request);
  Request* head = head_.load(std::memory_order_relaxed);
  do {
    node->next_completed = head;
  } while (!head_.compare_exchange_weak(head, node, std::memory_order_release, std::memory_order_relaxed));
  return head == nullptr;
}

std::vector<std::shared_ptr<Request>> CompletionQueue::take_all() {
  Request* node = head_.exchange(nullptr, std::memory_order_acquire);
  std::vector<std::shared_ptr<Request>> taken;
  for (; node != nullptr; node = node->next_completed) taken.push_back(std::move(node->self_ref));
  std::reverse(taken.begin(), taken.end());
  return taken;
}

}  // namespace shard::engine
