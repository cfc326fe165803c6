#include "shard/engine/timer_heap.h"

#include <algorithm>

namespace shard::engine {
namespace {

// std::*_heap build a max-heap: "later" sorts first, so the top is the earliest.
bool later(const TimerHeap::Entry& a, const TimerHeap::Entry& b) {
  return a.deadline_ns != b.deadline_ns ? a.deadline_ns > b.deadline_ns : a.seq > b.seq;
}

}  // namespace

TimerHeap::~TimerHeap() {
  for (Entry& e : heap_) Py_DECREF(e.tasklet);
}

void TimerHeap::push(int64_t deadline_ns, Tasklet* tasklet, uint64_t token) {
  Py_INCREF(tasklet);
  heap_.push_back({deadline_ns, seq_++, tasklet, token});
  std::push_heap(heap_.begin(), heap_.end(), later);
}

TimerHeap::Entry TimerHeap::pop() {
  std::pop_heap(heap_.begin(), heap_.end(), later);
  Entry e = heap_.back();
  heap_.pop_back();
  return e;
}

std::size_t TimerHeap::drop_stale() {
  std::vector<Tasklet*> dropped;
  auto live_end = std::partition(heap_.begin(), heap_.end(), [&](const Entry& e) {
    return e.tasklet->wait_token_.load(std::memory_order_acquire) == e.token;
  });
  for (auto it = live_end; it != heap_.end(); ++it) dropped.push_back(it->tasklet);
  heap_.erase(live_end, heap_.end());
  std::make_heap(heap_.begin(), heap_.end(), later);
  // Released last: a tasklet's deallocation may run Python code.
  for (Tasklet* t : dropped) Py_DECREF(t);
  return dropped.size();
}

void TimerHeap::clear() {
  std::vector<Entry> dropped;
  dropped.swap(heap_);
  // Released last: a tasklet's deallocation may run Python code.
  for (Entry& e : dropped) Py_DECREF(e.tasklet);
}

}  // namespace shard::engine
