#pragma once
// Worker threads for blocking work (file IO, DNS, database calls, Python
// callables that block): requests are taken FIFO, run, and handed to the
// Dispatcher as completions. Blocking work must not queue behind other blocking
// work, so the pool grows when every worker is busy, up to max_threads; it
// keeps its threads once started (peak concurrency is the steady state of a
// server).

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
  WorkerPool(Dispatcher& dispatcher, int min_threads, int max_threads);
  ~WorkerPool();  // finishes queued requests (as cancelled) and joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void submit(std::shared_ptr<Request> request);
  int threads();

 private:
  void run();
  void execute(Request& request);

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
