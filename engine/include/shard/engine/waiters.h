#pragma once
// The waiting side of uthread's locks: a FIFO of parked tasklets, and the
// protocol to wait on it.
//
// Concurrency model (the same as channels'): a primitive's state and its
// Waiters are guarded by the GIL, and nothing else. An operation runs no
// Python code and never releases the GIL between reading the state and
// updating it: arguments (which may call __bool__/__float__) are converted
// first, and references the operation drops are dropped only once the state is
// consistent again (DeferredDecrefs), because a Py_DECREF can run a finalizer.
// The only step that crosses threads is Scheduler::wake / make_runnable, which
// puts a waiter of another thread into its own scheduler's ring (under the
// GIL) and pokes that thread. No std::mutex: one held across a Py_DECREF or
// an allocation deadlocks when a finalizer, or a GIL hand-off to a thread that
// wants the same mutex, runs under it.
//
//   if the state allows: take it, done
//   else: token = waiters.prepare()
//   park_until(token, deadline) -> Woken / TimedOut / Error
//
// A waker pops the first waiter and calls Scheduler::wake; if that fails (the
// waiter timed out or was killed meanwhile) it moves on to the next one, so a
// release or notify is never lost. Handing off (a semaphore unit, lock
// ownership) happens only through a successful wake.

#include <Python.h>

#include <array>
#include <cstdint>
#include <deque>
#include <vector>

#include "shard/engine/tasklet.h"

namespace shard::engine {

// References to drop when the current operation is over (declare it before
// anything that touches the state, so it is destroyed last).
class DeferredDecrefs final {
 public:
  DeferredDecrefs() = default;
  ~DeferredDecrefs();
  DeferredDecrefs(const DeferredDecrefs&) = delete;
  DeferredDecrefs& operator=(const DeferredDecrefs&) = delete;
  void add(PyObject* owned) noexcept;

 private:
  std::array<PyObject*, 8> inline_{};
  std::size_t count_ = 0;
  std::vector<PyObject*> more_;
};

class Waiters final {
 public:
  ~Waiters();
  bool empty() const { return queue_.empty(); }
  std::size_t size() const { return queue_.size(); }

  // Registers the current tasklet; returns its wait token, or 0 with a Python
  // error set.
  uint64_t prepare();
  // Wakes the first waiter still waiting; false if there is none.
  bool wake_one(DeferredDecrefs& later);
  int wake_all(DeferredDecrefs& later);
  // Drops the entry of a wait that ended without a wake (timeout, kill).
  void forget(Tasklet* t, uint64_t token, DeferredDecrefs& later);

 private:
  struct Entry {
    Tasklet* tasklet;  // owned reference
    uint64_t token;
  };
  std::deque<Entry> queue_;
};

enum class WaitResult { kWoken, kTimedOut, kError };

// Parks the current tasklet after Waiters::prepare. On kTimedOut/kError the
// caller must forget() the entry, and on kError also check handed_off(): a
// wake that raced with the error handed it something it must give back.
WaitResult park_until(uint64_t token, double timeout_seconds);
bool handed_off(uint64_t token);

// Parses a Python timeout argument: None or absent = wait forever (-1).
bool parse_timeout(PyObject* value, double* seconds);

}  // namespace shard::engine
