#include "shard/engine/completion_queue.h"

namespace shard::engine {

Request::~Request() {
  // The last owner is a Python-side holder or a drain: both hold the GIL.
  Py_XDECREF(callable);
  Py_XDECREF(args);
  Py_XDECREF(result);
  Py_XDECREF(error);
  Py_XDECREF(reinterpret_cast<PyObject*>(waiter));
}

CompletionQueue::~CompletionQueue() {
  for (Request* list = take_all(); list != nullptr;) pop(&list);
}

bool CompletionQueue::push(std::shared_ptr<Request> request) {
  Request* node = request.get();
  node->self_ref = std::move(request);
  Request* head = head_.load(std::memory_order_relaxed);
  do {
    node->next_completed = head;
  } while (!head_.compare_exchange_weak(head, node, std::memory_order_release, std::memory_order_relaxed));
  return head == nullptr;
}

Request* CompletionQueue::take_all() {
  // Pushed newest first: reversed in place into completion order.
  Request* node = head_.exchange(nullptr, std::memory_order_acquire);
  Request* oldest_first = nullptr;
  while (node != nullptr) {
    Request* next = node->next_completed;
    node->next_completed = oldest_first;
    oldest_first = node;
    node = next;
  }
  return oldest_first;
}

std::shared_ptr<Request> CompletionQueue::pop(Request** list) {
  Request* node = *list;
  *list = node->next_completed;
  node->next_completed = nullptr;
  return std::move(node->self_ref);
}

}  // namespace shard::engine
