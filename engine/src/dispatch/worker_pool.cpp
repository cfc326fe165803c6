#include "shard/engine/worker_pool.h"

#include "core/python_errors.h"
#include "core/clock.h"
#include "shard/engine/dispatcher.h"

namespace shard::engine {

WorkerPool::WorkerPool(Dispatcher& dispatcher, int min_threads, int max_threads)
    : dispatcher_(dispatcher), max_threads_(max_threads) {
  std::lock_guard lock(mutex_);
  for (int i = 0; i < min_threads; ++i) threads_.emplace_back([this] { run(); });
}

int WorkerPool::threads() {
  std::lock_guard lock(mutex_);
  return static_cast<int>(threads_.size());
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void WorkerPool::submit(std::shared_ptr<Request> request) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(request));
    if (static_cast<int>(queue_.size()) > idle_ && static_cast<int>(threads_.size()) < max_threads_) {
      threads_.emplace_back([this] { run(); });
    }
  }
  ready_.notify_one();
}

void WorkerPool::run() {
  for (;;) {
    std::shared_ptr<Request> request;
    {
      std::unique_lock lock(mutex_);
      ++idle_;
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_;
      if (queue_.empty()) return;  // stopping, nothing left
      request = std::move(queue_.front());
      queue_.pop_front();
      if (stopping_) request->cancelled.store(true);
    }
    execute(*request);
    request->completed_ns = now_ns();
    // Always handed back, cancelled or not: the last reference must be dropped
    // with the GIL (the request holds Python objects).
    dispatcher_.complete(std::move(request));
  }
}

void WorkerPool::execute(Request& request) {
  // A request given up on, or past its deadline before it started, is skipped.
  if (request.cancelled.load() || (request.deadline_ns != 0 && now_ns() >= request.deadline_ns)) {
    request.cancelled.store(true);
    return;
  }
  if (request.work) {
    request.work();
    return;
  }
  PyGILState_STATE gil = PyGILState_Ensure();
  request.result = PyObject_Call(request.callable, request.args, nullptr);
  if (request.result == nullptr) request.error = take_exception();
  PyGILState_Release(gil);
}

}  // namespace shard::engine
