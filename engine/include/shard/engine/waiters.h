#pragma once
// The waiting side of uthread's locks: a FIFO of parked tasklets, and the
// protocol to wait on it. Each primitive guards its state and its Waiters with
// one std::mutex, so it is correct between threads whatever the GIL does (the
// GIL may change hands between any two bytecodes).
//
//   lock; if the state allows: take it, unlock, done
//         else: token = park_prepare(waiters); unlock
//   park_finish(token, deadline) -> Woken / TimedOut / Error
//
// A waker pops the first waiter under the lock and calls Scheduler::wake; if
// that fails (the waiter timed out or was killed meanwhile) it moves on to the
// next one, so a release or notify is never lost. Handing off (a semaphore
// unit, lock ownership) happens only through a successful wake.

#include <Python.h>

#include <cstdint>
#include <deque>
#include <mutex>

#include "shard/engine/tasklet.h"

namespace shard::engine {

class Waiters final {
 public:
  ~Waiters();
  bool empty() const { return queue_.empty(); }
  std::size_t size() const { return queue_.size(); }

  // Registers the current tasklet (caller holds the primitive's lock); returns
  // its wait token, or 0 with a Python error set.
  uint64_t prepare();
  // Wakes the first waiter still waiting; false if there is none.
  bool wake_one();
  int wake_all();
  // Drops the entry of a wait that ended without a wake (timeout, kill).
  void forget(Tasklet* t, uint64_t token);

 private:
  struct Entry {
    Tasklet* tasklet;  // owned reference
    uint64_t token;
  };
  std::deque<Entry> queue_;
};

enum class WaitResult { kWoken, kTimedOut, kError };

// Parks the current tasklet after Waiters::prepare (the lock released). On
// kTimedOut/kError the caller must take the lock and forget() the entry, and on
// kError also check handed_off(): a wake that raced with the error handed it
// something it must give back.
WaitResult park_until(uint64_t token, double timeout_seconds);
bool handed_off(uint64_t token);

// Parses a Python timeout argument: None or absent = wait forever (-1).
bool parse_timeout(PyObject* value, double* seconds);

}  // namespace shard::engine
