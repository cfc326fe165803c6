#include "shard/engine/worker_pool.h"

#include <system_error>

#include "core/clock.h"
#include "core/python_errors.h"
#include "dispatch/worker_gil.h"
#include "shard/engine/dispatcher.h"

namespace shard::engine {

WorkerPool::WorkerPool(Dispatcher& dispatcher, int min_threads, int max_threads)
    : dispatcher_(dispatcher), max_threads_(max_threads) {
  threads_.reserve(max_threads);
  std::lock_guard lock(mutex_);
  // A refusal here is not fatal: submit() tries again, and fails the request
  // only when no worker runs at all.
  std::system_error refused{std::error_code()};
  for (int i = 0; i < min_threads && start_worker_locked(&refused); ++i) {
  }
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

bool WorkerPool::start_worker_locked(std::system_error* error) {
  // threads_ has room for max_threads (reserved): only the thread can fail.
  try {
    threads_.emplace_back([this] { run(); });
    return true;
  } catch (const std::system_error& e) {
    *error = e;
    return false;
  }
}

void WorkerPool::submit(std::shared_ptr<Request> request) {
  {
    std::lock_guard lock(mutex_);
    if (static_cast<int>(queue_.size()) >= idle_ && static_cast<int>(threads_.size()) < max_threads_) {
      std::system_error refused{std::error_code()};
      if (!start_worker_locked(&refused) && threads_.empty()) {
        throw std::system_error(refused.code(), "cannot start a worker thread for an off-thread request");
      }
    }
    queue_.push_back(std::move(request));
  }
  ready_.notify_one();
}

void WorkerPool::run() noexcept {
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

void WorkerPool::execute(Request& request) noexcept {
  // A request given up on, or past its deadline before it started, is skipped.
  if (request.cancelled.load() || (request.deadline_ns != 0 && now_ns() >= request.deadline_ns)) {
    request.cancelled.store(true);
    return;
  }
  if (request.work) {
    // A C++ exception must not end the worker (std::terminate): the waiting
    // tasklet gets it as a Python exception.
    try {
      request.work();
    } catch (...) {
      request.failure = std::current_exception();
    }
    return;
  }
  WorkerGil gil;
  // The callable may let go of the lock (a sleep, hashlib.scrypt) and take it
  // back after the interpreter began to finalize.
  run_or_park_at_exit([&request] {
    request.result = PyObject_Call(request.callable, request.args, nullptr);
    if (request.result == nullptr) request.error = take_exception();
  });
}

}  // namespace shard::engine
