#include "shard/engine/io_pool.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <new>
#include <optional>

#include "dispatch/worker_gil.h"
#include "io/io_batch.h"
#include "shard/engine/asio.h"

namespace shard::engine {

namespace asio = boost::asio;

struct IoPool::Thread {
  // One thread runs it (concurrency hint 1: no locking inside Asio).
  std::shared_ptr<asio::io_context> context = std::make_shared<asio::io_context>(1);
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work{context->get_executor()};
  std::thread thread;
};

namespace {

int configured_threads(int requested) {
  if (requested <= 0) {
    requested = IoPool::kDefaultThreads;
    if (const char* env = std::getenv("SHARD_IO_THREADS"); env != nullptr && *env != '\0') {
      requested = std::atoi(env);
    }
  }
  return std::clamp(requested, 1, IoPool::kMaxThreads);
}

}  // namespace

IoPool& IoPool::instance() {
  static IoPool* pool = new IoPool();
  return *pool;
}

IoPool::IoPool() = default;

IoPool::~IoPool() { stop(); }

std::error_code IoPool::start(int threads) {
  std::unique_lock lock(mutex_);
  if (running_.load() || !threads_.empty()) return std::make_error_code(std::errc::operation_in_progress);
  const int count = configured_threads(threads);
  try {
    for (int i = 0; i < count; ++i) {
      auto t = std::make_unique<Thread>();
      asio::io_context& context = *t->context;
      t->thread = std::thread([this, &context] { run(context); });
      ++running_threads_;
      threads_.push_back(std::move(t));
    }
  } catch (const std::system_error& e) {
    lock.unlock();
    stop();  // the ones that did start
    return e.code();
  } catch (const std::bad_alloc&) {
    lock.unlock();
    stop();
    return std::make_error_code(std::errc::not_enough_memory);
  }
  running_.store(true, std::memory_order_release);
  return {};
}

void IoPool::run(asio::io_context& context) noexcept {
  count_lock_acquisitions_on_this_thread(&lock_acquisitions_);
  IoBatch batch(context);
  IoBatch::set_current(&batch);
  // A handler that throws must not end the thread (std::terminate), nor leave
  // the others' completions unrun: it is logged, and the context goes on.
  for (;;) {
    try {
      context.run();
      break;
    } catch (const std::exception& e) {
      handler_errors_.fetch_add(1);
      std::fprintf(stderr, "shard: an IO completion handler threw (the IO thread goes on): %s\n", e.what());
    } catch (...) {
      handler_errors_.fetch_add(1);
      std::fprintf(stderr, "shard: an IO completion handler threw a non-standard exception (the IO thread goes on)\n");
    }
  }
  IoBatch::set_current(nullptr);
  count_lock_acquisitions_on_this_thread(nullptr);
  std::lock_guard lock(mutex_);
  --running_threads_;
  exited_.notify_all();
}

void IoPool::stop(std::chrono::milliseconds grace) {
  std::vector<std::unique_ptr<Thread>> threads;
  {
    std::unique_lock lock(mutex_);
    running_.store(false, std::memory_order_release);  // no new operations from here on
    for (const std::function<void()>* cancel : waits_) {
      if (cancel == nullptr) continue;
      cancellations_.fetch_add(1);
      call_cancel(*cancel);
    }
    // Without their guards the contexts run out of work once every handler,
    // cancelled ones included, has run: run() returns by itself.
    for (auto& t : threads_) t->work.reset();
    if (!exited_.wait_for(lock, grace, [this] { return running_threads_ == 0; })) {
      std::fprintf(stderr, "shard: IO operations ignored their cancellation for %lld ms: abandoned\n",
                   static_cast<long long>(grace.count()));
      for (auto& t : threads_) t->context->stop();
    }
    threads.swap(threads_);
    next_ = 0;
  }
  for (auto& t : threads) {
    if (t->thread.joinable()) t->thread.join();
  }
  // A context goes with its last owner: the handlers it still holds (only
  // after an abandon) are destroyed then, and a completer among them ends its
  // wait as cancelled. An operation that holds its own context alive is
  // leaked instead: the price of not waiting forever for it.
  threads.clear();
}

int IoPool::threads() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(threads_.size());
}

std::shared_ptr<asio::io_context> IoPool::next_context() {
  std::lock_guard lock(mutex_);
  if (!running_.load() || threads_.empty()) return nullptr;
  return threads_[next_++ % threads_.size()]->context;
}

std::shared_ptr<asio::io_context> IoPool::context_at(std::size_t n) {
  std::lock_guard lock(mutex_);
  if (!running_.load() || threads_.empty()) return nullptr;
  return threads_[n % threads_.size()]->context;
}

int IoPool::index_of(const asio::io_context& context) const {
  std::lock_guard lock(mutex_);
  for (std::size_t i = 0; i < threads_.size(); ++i) {
    if (threads_[i]->context.get() == &context) return static_cast<int>(i);
  }
  return -1;
}

IoPool::Registration::Registration(IoPool& pool, const std::function<void()>* cancel) noexcept : pool_(pool) {
  std::lock_guard lock(pool_.mutex_);
  try {
    if (pool_.free_slots_.empty()) {
      pool_.free_slots_.reserve(pool_.waits_.size() + 1);  // so that the release cannot fail
      pool_.waits_.push_back(nullptr);
      pool_.free_slots_.push_back(pool_.waits_.size() - 1);
    }
  } catch (const std::bad_alloc&) {
    return;
  }
  slot_ = pool_.free_slots_.back();
  pool_.free_slots_.pop_back();
  pool_.waits_[slot_] = cancel;
  ++pool_.wait_count_;
}

IoPool::Registration::~Registration() {
  if (slot_ == kNone) return;
  std::lock_guard lock(pool_.mutex_);
  pool_.waits_[slot_] = nullptr;
  pool_.free_slots_.push_back(slot_);  // capacity reserved when the slot was made
  --pool_.wait_count_;
}

void IoPool::cancel(const std::function<void()>& cancel) {
  std::lock_guard lock(mutex_);
  // After stop() every registered operation was cancelled already and no
  // thread runs its context any more: a cancel posted now would sit in that
  // context for good, holding the operation, which holds the context (a cycle
  // that leaked both at exit, when tasklets killed after the stop gave up).
  if (!running_.load(std::memory_order_acquire)) return;
  cancellations_.fetch_add(1);
  call_cancel(cancel);
}

void IoPool::call_cancel(const std::function<void()>& cancel) noexcept {
  // A cancel function only posts to a context or closes an Asio object; one
  // that throws anyway is reported, and the operation is left to its deadline.
  try {
    if (cancel) cancel();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shard: cancelling an IO operation failed: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "shard: cancelling an IO operation failed\n");
  }
}

IoPool::Stats IoPool::stats() const {
  Stats s;
  s.cancellations = cancellations_.load();
  s.lock_acquisitions = lock_acquisitions_.load();
  s.handler_errors = handler_errors_.load();
  std::lock_guard lock(mutex_);
  s.waits = wait_count_;
  return s;
}

}  // namespace shard::engine
