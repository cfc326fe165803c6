#include "shard/engine/watchdog_stack.h"

namespace shard::engine {

WatchdogStack::Watchdog* WatchdogStack::find(Tasklet* t) {
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->tasklet == t) return &*it;
  }
  return nullptr;
}

void WatchdogStack::push(const Watchdog& w) {
  if (w.timed() && timed_index_ < 0) timed_index_ = static_cast<int>(entries_.size());
  entries_.push_back(w);
}

Tasklet* WatchdogStack::pop_through(Tasklet* t, std::vector<Tasklet*>* outlived) {
  Tasklet* interrupted = nullptr;
  while (!entries_.empty()) {
    Watchdog top = entries_.back();
    entries_.pop_back();
    if (timed_index_ >= static_cast<int>(entries_.size())) timed_index_ = -1;
    if (top.tasklet == t) {
      interrupted = top.interrupted;
      break;
    }
    Py_XDECREF(top.interrupted);
    if (outlived != nullptr) outlived->push_back(top.tasklet);
  }
  return interrupted;
}

void WatchdogStack::clear() {
  for (Watchdog& w : entries_) Py_CLEAR(w.interrupted);
  entries_.clear();
  timed_index_ = -1;
}

}  // namespace shard::engine
