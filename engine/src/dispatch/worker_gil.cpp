#include "dispatch/worker_gil.h"

#include "shard/engine/scheduler.h"

namespace shard::engine {
namespace {

// One per worker thread (thread_local): the outermost PyGILState_Ensure, held
// (with the lock released) for the thread's life.
class PersistentState final {
 public:
  void ensure() {
    if (tstate_ != nullptr) return;
    outer_ = PyGILState_Ensure();
    // Workers wake tasklets only through requests in flight, which the main
    // thread's idle wait counts: an idle worker is no reason to wait.
    if (!Scheduler::mark_passive_thread()) PyErr_WriteUnraisable(nullptr);
    tstate_ = PyEval_SaveThread();
  }

  ~PersistentState() {
    // At interpreter shutdown the runtime deletes every thread state itself,
    // and taking the lock back would end this thread.
    if (tstate_ == nullptr || _Py_IsFinalizing()) return;
    PyEval_RestoreThread(tstate_);
    PyGILState_Release(outer_);  // the outermost release clears and deletes it
  }

 private:
  PyThreadState* tstate_ = nullptr;
  PyGILState_STATE outer_ = PyGILState_UNLOCKED;
};

thread_local PersistentState persistent;
thread_local std::atomic<uint64_t>* acquisition_counter = nullptr;

}  // namespace

void count_lock_acquisitions_on_this_thread(std::atomic<uint64_t>* counter) { acquisition_counter = counter; }

WorkerGil::WorkerGil() {
  if (acquisition_counter != nullptr) acquisition_counter->fetch_add(1, std::memory_order_relaxed);
  run_or_park_at_exit([this] {
    persistent.ensure();
    state_ = PyGILState_Ensure();
  });
}

WorkerGil::~WorkerGil() { PyGILState_Release(state_); }

}  // namespace shard::engine
