#pragma once
// A circular, intrusive FIFO of tasklets linked through Tasklet::next_/prev_:
// a thread's runnable ring and a channel's wait queue are both one. A tasklet is
// in at most one ring at a time. The ring owns a reference to each member:
// push_back() takes one, unlink() hands it back to the caller.
//
// `head()` is the front; push_back() adds at the end, just before the head.
// The scheduler moves the head round-robin (set_head), so "the end" is always
// "right before whoever runs next".

#include <Python.h>

#include <cstddef>

#include "shard/engine/tasklet.h"

namespace shard::engine {

class TaskletRing final {
 public:
  TaskletRing() = default;
  TaskletRing(const TaskletRing&) = delete;
  TaskletRing& operator=(const TaskletRing&) = delete;

  Tasklet* head() const { return head_; }
  bool empty() const { return head_ == nullptr; }
  std::size_t size() const { return size_; }

  // `t` must be a member (or null only when the ring is empty).
  void set_head(Tasklet* t) { head_ = t; }

  void push_back(Tasklet* t) {
    Py_INCREF(t);
    if (head_ == nullptr) {
      t->next_ = t->prev_ = t;
      head_ = t;
    } else {
      t->next_ = head_;
      t->prev_ = head_->prev_;
      head_->prev_->next_ = t;
      head_->prev_ = t;
    }
    ++size_;
  }

  // Takes a member out; the caller owns the ring's reference from now on. An
  // unlinked head passes the head on to its successor.
  Tasklet* unlink(Tasklet* t) {
    if (t->next_ == t) {
      head_ = nullptr;
    } else {
      if (head_ == t) head_ = t->next_;
      t->prev_->next_ = t->next_;
      t->next_->prev_ = t->prev_;
    }
    t->next_ = t->prev_ = nullptr;
    --size_;
    return t;
  }

  // Visits members front to back; `visit` must not change the ring.
  template <typename Visit>
  void for_each(Visit&& visit) const {
    Tasklet* t = head_;
    if (t == nullptr) return;
    do {
      visit(t);
      t = t->next_;
    } while (t != head_);
  }

 private:
  Tasklet* head_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace shard::engine
