#pragma once
// How a completed request wakes its tasklet: the dispatch strategies of the
// EVE StacklessIO talk, switchable while running. All strategies share one
// completion queue, and every drain takes what it dispatches out of it
// atomically, so a switch loses or duplicates nothing; the game loop's phase 2
// drains whatever is left under any strategy. Dispatching only makes tasklets
// runnable (in completion order); it never switches.
//
//   main_loop             phase 2 of each frame drains the queue
//   on_block              a tasklet about to wait for its request first
//                         dispatches completions older than its own
//   main_thread_callback  the completion wakes the main thread's wait (phase 1)
//                         and is dispatched there, mid-frame
//   worker_acquires_gil   the worker takes the interpreter lock and dispatches;
//                         the first worker queues for the lock, the others
//                         append and leave, one acquisition drains all
//   pending_call          Py_AddPendingCall: the interpreter drains at its next
//                         eval-breaker check, even mid-frame while Python runs
//                         (at most one drain outstanding; the eval breaker is
//                         raised on every completion while it is, since stock
//                         3.11 computes it for the calling thread only)

#include <Python.h>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "shard/engine/completion_queue.h"
#include "shard/engine/latency_histogram.h"

namespace shard::engine {

class WorkerPool;

enum class Strategy : int { kMainLoop, kOnBlock, kMainThreadCallback, kWorkerAcquiresGil, kPendingCall };
constexpr int kStrategies = 5;
const char* strategy_name(Strategy s);
bool strategy_from_name(const std::string& name, Strategy* out);

struct StrategyStats {
  LatencyHistogram dispatch;  // completion -> runnable
  LatencyHistogram run;       // completion -> running again
  uint64_t drains = 0;
  uint64_t completions = 0;
  uint64_t lock_acquisitions = 0;  // by workers (worker_acquires_gil)
};

class Dispatcher final {
 public:
  // Created by the main thread (GIL held); `wake_main` interrupts the main
  // thread's wait (the game loop's phase 1).
  explicit Dispatcher(std::function<void()> wake_main);
  ~Dispatcher();

  static Dispatcher& instance();  // the main thread's, created on first use

  Strategy strategy() const { return strategy_.load(std::memory_order_acquire); }
  void set_strategy(Strategy s) { strategy_.store(s, std::memory_order_release); }
  void set_wake_main(std::function<void()> wake) { wake_main_ = std::move(wake); }
  // While the game loop runs: the eventfd that ends its phase-1 wait (-1: no
  // loop, completions wake the scheduler's idle wait instead).
  void set_loop_wake_fd(int fd) { loop_wake_fd_.store(fd, std::memory_order_release); }

  // Runs `work` (C++, no Python) or callable(*args) (Python, GIL taken on the
  // worker) for the current tasklet, which waits for it; timeout_s < 0: none.
  // Returns the Python result (None for C++ work) or null with an exception:
  // TimeoutError at the deadline, or whatever killed the tasklet; a request
  // given up on is cancelled.
  PyObject* run_blocking(std::function<void()> work, double timeout_s);
  PyObject* call_in_thread(PyObject* callable, PyObject* args, double timeout_s);

  // Worker side: a request finished (or was skipped as cancelled).
  void complete(std::shared_ptr<Request> request);

  // GIL held. Dispatches every queued completion; returns how many.
  int drain();
  // on_block: only completions older than `seq` (GIL held, main thread).
  int drain_older_than(uint64_t seq);

  const StrategyStats& stats(Strategy s) const { return stats_[static_cast<int>(s)]; }
  void reset_stats();
  uint64_t in_flight() const { return in_flight_.load(); }

  WorkerPool& workers();

 private:
  PyObject* wait_for(std::shared_ptr<Request> request, double timeout_s);
  void dispatch(Request& request, Strategy s);
  void workers_take_the_lock();
  static int pending_call_drain(void* self);

  void wake_loop_or_idle(bool loop_too);

  std::atomic<Strategy> strategy_{Strategy::kMainLoop};
  std::atomic<int> loop_wake_fd_{-1};
  std::function<void()> wake_main_;
  CompletionQueue completions_;
  // Taken from the queue by on_block but newer than the blocking request: they
  // wait here, ahead of anything completed later.
  std::vector<std::shared_ptr<Request>> deferred_;
  std::atomic<bool> lock_taker_{false};       // worker_acquires_gil aggregation
  std::atomic<bool> pending_scheduled_{false};  // one pending-call drain at a time
  std::atomic<uint64_t> in_flight_{0};
  uint64_t next_seq_ = 0;
  std::array<StrategyStats, kStrategies> stats_{};
  PyInterpreterState* interp_;
  std::unique_ptr<WorkerPool> workers_;
};

}  // namespace shard::engine
