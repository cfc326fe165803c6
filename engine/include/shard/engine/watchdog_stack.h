#pragma once
// The watchdogs of one thread: each active stackless.run() is an entry, the
// innermost last. The innermost watchdog runs when the ring empties and gets
// the errors that escape tasklets; only the outermost run() with a timeout or
// totaltimeout sets the pace (Stackless semantics), so at most one entry is
// timed. Whether a timed run() is active is read off the stack itself, never
// kept beside it, so it cannot outlive its entry.
//
// Owner-thread only, GIL held. Entries own their `interrupted` reference; the
// `tasklet` is borrowed (the run() call holds it).

#include <Python.h>

#include <cstdint>
#include <vector>

#include "shard/engine/tasklet.h"

namespace shard::engine {

class WatchdogStack final {
 public:
  enum class WakeReason { kNone, kRingEmpty, kInterrupted, kSoftTimeout };
  struct Watchdog {
    Tasklet* tasklet;
    int64_t timeout_ns;
    int64_t deadline_ns;  // totaltimeout; 0 = none
    bool soft;
    WakeReason reason = WakeReason::kNone;
    Tasklet* interrupted = nullptr;  // owned

    bool timed() const { return timeout_ns != 0 || deadline_ns != 0; }
  };

  WatchdogStack() = default;
  WatchdogStack(const WatchdogStack&) = delete;
  WatchdogStack& operator=(const WatchdogStack&) = delete;
  ~WatchdogStack() { clear(); }

  bool empty() const { return entries_.empty(); }
  Watchdog* innermost() { return entries_.empty() ? nullptr : &entries_.back(); }
  // The timed entry, or null when no run() with a budget is active.
  Watchdog* timed() { return timed_index_ < 0 ? nullptr : &entries_[static_cast<std::size_t>(timed_index_)]; }
  Watchdog* find(Tasklet* t);

  void push(const Watchdog& w);
  // Pops `t`'s entry and every inner one above it (left by tasklets that
  // died, or outlived: still waiting in a run() of their own, which `outlived`
  // collects, innermost first); returns what interrupted `t`'s run (owned), or null.
  Tasklet* pop_through(Tasklet* t, std::vector<Tasklet*>* outlived = nullptr);
  void clear();

 private:
  std::vector<Watchdog> entries_;
  int timed_index_ = -1;
};

}  // namespace shard::engine
