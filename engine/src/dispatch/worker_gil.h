#pragma once
// The interpreter lock, taken on a worker thread through the worker's one
// Python thread state. The state is made the first time the worker needs the
// lock and kept until the worker exits, where it is cleared and deleted: a
// fresh thread state per request (what a bare PyGILState_Ensure gives a
// thread without one) would be built and torn down every time, with whatever
// Python hangs on it (a scheduler, as soon as the work touches stackless).
// It is PyGILState's state of the thread, so nested Ensure/Release pairs in
// the work (C extensions) reuse it too.

#include <Python.h>

#include <atomic>
#include <cstdint>

#include "core/park_at_exit.h"

namespace shard::engine {

// Threads that must not need the interpreter (the IO threads) count every
// acquisition a WorkerGil makes on them into `counter` (null: stop counting),
// so tests and statistics can show that none happens where none may.
void count_lock_acquisitions_on_this_thread(std::atomic<uint64_t>* counter);

class WorkerGil final {
 public:
  WorkerGil();  // blocks until the lock is held; parks for good at interpreter exit (core/park_at_exit.h)
  ~WorkerGil();
  WorkerGil(const WorkerGil&) = delete;
  WorkerGil& operator=(const WorkerGil&) = delete;

 private:
  PyGILState_STATE state_;
};

}  // namespace shard::engine
