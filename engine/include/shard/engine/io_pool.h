#pragma once
// The engine's IO threads: each runs one Boost.Asio io_context, on which
// asynchronous operations (timers, sockets, resolves) are started and
// completed. Nothing on these threads touches Python: an operation's
// completion handler hands its result to the tasklet that waits for it
// through await_completion() (shard/engine/await_completion.h), which queues
// it for the dispatcher.
//
// Started with the engine (SHARD_IO_THREADS threads, default 2, at most
// kMaxThreads) and stopped at interpreter exit. stop() cancels every
// operation a tasklet still waits for (its cancel function runs, so the
// operation completes with its cancellation error), lets the threads run the
// cancelled handlers to the end, and joins them; an operation that ignores
// its cancellation for longer than the grace is abandoned (its context is
// stopped and destroyed: a completer dropped that way completes with
// operation_canceled). Pure C++: callers holding the interpreter lock release
// it around stop().
//
// Thread-safe throughout.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace shard::engine {

class IoPool final {
 public:
  static constexpr int kDefaultThreads = 2;
  static constexpr int kMaxThreads = 64;

  // The engine's pool (never destroyed: completions may arrive during exit).
  static IoPool& instance();

  IoPool();
  ~IoPool();  // stop()
  IoPool(const IoPool&) = delete;
  IoPool& operator=(const IoPool&) = delete;

  // Starts `threads` IO threads (0: SHARD_IO_THREADS, else kDefaultThreads;
  // clamped to [1, kMaxThreads]). Errors: already running
  // (operation_in_progress), the OS refusing a thread (nothing left started).
  std::error_code start(int threads = 0);
  // Cancels what is waited for, joins the threads (see above). A no-op when
  // stopped. Not from an IO thread.
  void stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000));
  bool running() const { return running_.load(std::memory_order_acquire); }
  int threads() const;

  // The context to start a new operation on (round robin); null when the pool
  // is not running. Shared: an operation keeps its context's memory alive
  // (its Asio objects refer to it) even past a stop().
  std::shared_ptr<boost::asio::io_context> next_context();
  // The context of IO thread n (modulo their number), for a caller that
  // spreads its own operations in turn (a listener's accepted connections:
  // sharing next_context()'s turn with connect() could give them all one).
  std::shared_ptr<boost::asio::io_context> context_at(std::size_t n);
  // Which IO thread runs `context` (0-based), -1 if none of the running ones.
  int index_of(const boost::asio::io_context& context) const;

  // A tasklet's wait for an operation, registered for as long as it waits so
  // that stop() can cancel the operation. `cancel` must be safe to call from
  // any thread, more than once, and after the operation completed; stop()
  // calls it under the pool's mutex, so it must not call into the pool.
  // Kept in a slot of the pool's own table, not linked through the waiters'
  // stacks: unlinking touches no other waiter's memory (with a thousand
  // tasklets waiting, the neighbours' stack pages were cache and TLB misses
  // on every wait).
  class Registration final {
   public:
    Registration(IoPool& pool, const std::function<void()>* cancel) noexcept;
    ~Registration();
    Registration(const Registration&) = delete;
    Registration& operator=(const Registration&) = delete;
    // False when the table could not grow (no memory): do not wait then.
    bool registered() const { return slot_ != kNone; }

   private:
    static constexpr std::size_t kNone = ~std::size_t{0};
    IoPool& pool_;
    std::size_t slot_ = kNone;
  };
  // Calls `cancel` and counts it (a waiter gave up: killed, timed out); a
  // no-op once stopped: stop() cancelled every operation already.
  void cancel(const std::function<void()>& cancel);

  struct Stats {
    uint64_t cancellations = 0;      // cancel functions called (waiters giving up, stop())
    uint64_t lock_acquisitions = 0;  // interpreter-lock acquisitions on IO threads
    uint64_t handler_errors = 0;     // exceptions escaping a handler (logged, the thread goes on)
    std::size_t waits = 0;           // registered waits now
  };
  Stats stats() const;

 private:
  struct Thread;
  void run(boost::asio::io_context& context) noexcept;
  static void call_cancel(const std::function<void()>& cancel) noexcept;

  mutable std::mutex mutex_;          // the members below
  std::vector<std::unique_ptr<Thread>> threads_;
  std::size_t next_ = 0;
  std::vector<const std::function<void()>*> waits_;  // registered cancels; null: a free slot
  std::vector<std::size_t> free_slots_;
  std::size_t wait_count_ = 0;
  std::condition_variable exited_;    // a thread's run() returned
  int running_threads_ = 0;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> cancellations_{0};
  std::atomic<uint64_t> lock_acquisitions_{0};
  std::atomic<uint64_t> handler_errors_{0};
};

}  // namespace shard::engine
