#pragma once
// Worker threads for blocking work (file IO, DNS, database calls, Python
// callables that block): requests are taken FIFO, run, and handed to the
// Dispatcher as completions. Blocking work must not queue behind other blocking
// work, so the pool grows when every worker is busy, up to max_threads; it
// keeps its threads once started (peak concurrency is the steady state of a
// server).
//
// Nothing here throws past submit(): a worker that cannot be started (the OS
// refuses a thread) leaves the request to the running workers, and submit()
// throws std::system_error only when there is no worker at all to run it.

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "shard/engine/request.h"

namespace shard::engine {

class Dispatcher;

class WorkerPool final {
 public:
  // Starts up to min_threads workers now (as many as the OS gives).
  WorkerPool(Dispatcher& dispatcher, int min_threads, int max_threads);
  ~WorkerPool();  // finishes queued requests (as cancelled) and joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues the request; throws std::system_error (the request not queued)
  // when no worker runs and none can be started, std::bad_alloc.
  void submit(std::shared_ptr<Request> request);
  int threads();

 private:
  // Starts one more worker (mutex_ held); false when the OS refuses, with the
  // error in *error.
  bool start_worker_locked(std::system_error* error);
  void run() noexcept;
  void execute(Request& request) noexcept;

  Dispatcher& dispatcher_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::shared_ptr<Request>> queue_;
  bool stopping_ = false;
  int idle_ = 0;
  const int max_threads_;
  std::vector<std::thread> threads_;
};

}  // namespace shard::engine
