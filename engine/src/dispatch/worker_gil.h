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
#include <cxxabi.h>

#include <atomic>
#include <cstdint>

namespace shard::engine {

// Threads that must not need the interpreter (the IO threads) count every
// acquisition a WorkerGil makes on them into `counter` (null: stop counting),
// so tests and statistics can show that none happens where none may.
void count_lock_acquisitions_on_this_thread(std::atomic<uint64_t>* counter);

// Blocks the calling thread for good; the process is exiting.
[[noreturn]] void park_thread_for_good() noexcept;

// Runs f, which takes the interpreter lock on a thread the runtime did not
// start. CPython 3.11 ends a thread that takes the lock while the interpreter
// finalizes with pthread_exit: its forced unwind would reach the worker's
// noexcept frames (std::terminate, a crashed node, "terminate called without
// an active exception") or run destructors that drop Python objects without
// the lock. The thread parks instead, holding nothing, as CPython 3.14 does
// itself (gh-87135); the catch block is never left, so nothing there can
// switch tasklets or run Python.
template <class F>
void run_or_park_at_exit(F&& f) noexcept {
  try {
    f();
  } catch (abi::__forced_unwind&) {
    park_thread_for_good();
  }
}

class WorkerGil final {
 public:
  WorkerGil();  // blocks until the lock is held; parks for good at interpreter exit
  ~WorkerGil();
  WorkerGil(const WorkerGil&) = delete;
  WorkerGil& operator=(const WorkerGil&) = delete;

 private:
  PyGILState_STATE state_;
};

}  // namespace shard::engine
