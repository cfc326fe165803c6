#pragma once
// How a completed request wakes its tasklet: the dispatch strategies of the
// EVE StacklessIO talk, switchable while running. All strategies share one
// completion queue, and every drain takes what it dispatches out of it
// atomically, so a switch loses or duplicates nothing; the game loop's phase 2
// drains whatever is left under any strategy. Dispatching only makes tasklets
// runnable (in completion order); it never switches. Requests complete on
// worker threads (run_blocking, call_in_thread) and on the IO threads
// (await_completion, shard/engine/await_completion.h) alike: "the worker"
// below is whichever thread completed the request.
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
//
// The dispatcher belongs to the main thread: start() makes it there at
// interpreter start-up, so whichever thread makes the first request cannot
// take it over. A tasklet of another thread may make requests too; their
// completions bypass the strategies (which drain on the main thread, and the
// main thread may be busy joining that very thread): the worker takes the
// interpreter lock and wakes the tasklet itself, into its thread's ring
// (Scheduler::wake). The statistics count main-thread requests.

#include <Python.h>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shard/engine/completion_queue.h"
#include "shard/engine/latency_histogram.h"

namespace shard::engine {

class Scheduler;
struct Tasklet;
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
  // Interpreter start-up, on the main thread with the GIL held: the
  // dispatcher of this thread's scheduler (created if need be). Null with a
  // Python error when it cannot be made; once made, the same one.
  static Dispatcher* start();
  // The started dispatcher, or null with RuntimeError set.
  static Dispatcher* get();
  // The started dispatcher (the game loop runs only once it is).
  static Dispatcher& instance();

  Strategy strategy() const { return strategy_.load(std::memory_order_acquire); }
  void set_strategy(Strategy s) { strategy_.store(s, std::memory_order_release); }
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

  // How a wait() ended. kInterrupted and kNotStarted leave a Python error set
  // (the tasklet was killed or had an exception thrown in; start() failed and
  // said why), the others none.
  enum class WaitEnd { kCompleted, kTimedOut, kInterrupted, kNotStarted };
  // The one wait for outside work, beneath run_blocking, call_in_thread and
  // every IO operation (io/await_completion.h): the current tasklet parks
  // until `request` is handed to complete() and dispatched by the strategy in
  // force, or `deadline_ns` passes (0: none), or it is killed. `start` hands
  // the request to whatever completes it (a worker, an IO thread); it runs
  // after the wait token exists, so it may complete at once, even on this
  // thread; false: not started (the Python error says why). A request given up
  // on is marked cancelled: its late completion is dropped, not dispatched.
  // GIL held, in any tasklet of any thread.
  WaitEnd wait(const std::shared_ptr<Request>& request, int64_t deadline_ns, const std::function<bool()>& start);

  // Any thread: a request finished (or was skipped as cancelled). Takes the
  // interpreter lock only under worker_acquires_gil, or to wake a tasklet of
  // another thread than the main one.
  void complete(std::shared_ptr<Request> request);
  // complete() in two halves, for a thread that completes many requests in
  // one batch (an IO thread, io/io_batch.h) and wakes the main thread once
  // for all of them: enqueue() queues the request (or delivers it at once: a
  // waiter of another thread, a completion on the main thread) and says
  // whether signal() is still due; signal() is the strategy's wake-up (the
  // loop's eventfd, the idle wake, the pending call, or the lock taken and
  // the queue drained), which covers everything enqueued before it. Not on
  // the main thread.
  bool enqueue(std::shared_ptr<Request> request);
  void signal();

  // GIL held. Dispatches every queued completion; returns how many.
  int drain();
  // on_block: only completions older than `seq` (GIL held, main thread).
  int drain_older_than(uint64_t seq);

  // GIL held, main thread (the queue's consumer): the tasklets that the
  // completions waiting to be dispatched will wake, in the order a drain would
  // wake them (completion order), left queued. Cancelled ones wake nobody and
  // are left out. For tests that must know the completion order itself.
  std::vector<Tasklet*> queued_waiters() const;
  bool on_main_thread() const { return std::this_thread::get_id() == main_thread_; }

  const StrategyStats& stats(Strategy s) const { return stats_[static_cast<int>(s)]; }
  void reset_stats();
  uint64_t in_flight() const { return in_flight_.load(); }

  int worker_threads();  // 0 before the first request

 private:
  explicit Dispatcher(Scheduler* main);
  ~Dispatcher() = delete;  // never destroyed: workers may hand back requests during shutdown

  PyObject* wait_for(std::shared_ptr<Request> request, double timeout_s);
  // Hands the request to a worker; false with a Python error (OSError when no
  // worker thread can be started, MemoryError) when it cannot be.
  bool submit(const std::shared_ptr<Request>& request);
  void wake_on_its_thread(std::shared_ptr<Request> request);
  WorkerPool& workers();  // made on first use; throws what the pool throws
  // The deferred requests, then everything the queue holds: completion order.
  Request* take_batch();
  void defer(std::shared_ptr<Request> request);
  void dispatch(Request& request, Strategy s);
  void workers_take_the_lock();
  static int pending_call_drain(void* self);

  void wake_loop_or_idle(bool loop_too);

  std::atomic<Strategy> strategy_{Strategy::kMainLoop};
  std::atomic<int> loop_wake_fd_{-1};
  Scheduler* const main_;  // the main thread's (never freed)
  const std::thread::id main_thread_;  // complete() there never takes the lock itself
  CompletionQueue completions_;
  // Taken from the queue by on_block but newer than the blocking request: they
  // wait here, ahead of anything completed later (linked like the queue, so
  // deferring allocates nothing).
  Request* deferred_head_ = nullptr;
  Request** deferred_tail_ = &deferred_head_;
  std::atomic<bool> lock_taker_{false};       // worker_acquires_gil aggregation
  std::atomic<bool> pending_scheduled_{false};  // one pending-call drain at a time
  std::atomic<uint64_t> in_flight_{0};
  uint64_t next_seq_ = 0;
  std::array<StrategyStats, kStrategies> stats_{};
  PyInterpreterState* interp_;
  std::unique_ptr<WorkerPool> workers_;
};

}  // namespace shard::engine
