#pragma once
// Sleepers of one thread: tasklets parked until a deadline, in a binary heap
// ordered by (deadline, insertion order) so equal deadlines wake FIFO. An entry
// only names a wait (its token); a tasklet woken earlier by someone else leaves
// a stale entry that is skipped when it comes due, or dropped in bulk when
// stale entries make up half the heap.

#include <cstdint>
#include <vector>

#include "shard/engine/tasklet.h"

namespace shard::engine {

class TimerHeap final {
 public:
  struct Entry {
    int64_t deadline_ns;
    uint64_t seq;
    Tasklet* tasklet;  // owned reference
    uint64_t token;
  };

  ~TimerHeap();

  void push(int64_t deadline_ns, Tasklet* tasklet, uint64_t token);
  bool empty() const { return heap_.empty(); }
  std::size_t size() const { return heap_.size(); }
  int64_t next_deadline() const { return heap_.front().deadline_ns; }
  // Removes the earliest entry; the caller owns its reference.
  Entry pop();
  // Drops every entry whose wait already ended (its tasklet's wait token moved
  // on), so long timeouts ended early do not pile up; returns how many.
  std::size_t drop_stale();
  // Drops every entry (its thread ended: nothing will ever pop them).
  void clear();

 private:
  std::vector<Entry> heap_;
  uint64_t seq_ = 0;
};

}  // namespace shard::engine
