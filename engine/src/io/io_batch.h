#pragma once
// One wake-up of the main thread per batch of an IO thread's completions,
// not one per completion. An IO thread runs the handlers that one epoll round
// made ready one after the other; each may complete a waiting tasklet's
// operation. The first completion of a batch posts one "signal" handler to
// the thread's own io_context: it runs after the handlers already ready (and
// those the next, non-blocking, poll adds ahead of it), and calls the
// dispatcher's signal() once for all of them: one eventfd write or futex wake,
// one pending call, or (worker_acquires_gil) one interpreter-lock acquisition
// per batch. The wake-up still goes through the dispatch strategy in force.
//
// If a context is abandoned before the signal handler runs (IoPool::stop()
// past its grace), the completions stay queued: the game loop's phase 2 and
// the scheduler's idle wait (which looks every 50 ms) drain them anyway.
//
// IO threads only (IoPool::run installs one per thread).

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace shard::engine {

class Dispatcher;

class IoBatch final {
 public:
  explicit IoBatch(boost::asio::io_context& context) : context_(context) {}
  IoBatch(const IoBatch&) = delete;
  IoBatch& operator=(const IoBatch&) = delete;

  // This thread's batch; null off the IO threads.
  static IoBatch* current() noexcept;
  // Installs `batch` for this thread (null: none).
  static void set_current(IoBatch* batch) noexcept;

  // A request was enqueued for `dispatcher`: signal it at the end of the batch.
  void signal_later(Dispatcher& dispatcher) noexcept;

 private:
  void signal_now() noexcept;

  boost::asio::io_context& context_;
  Dispatcher* due_ = nullptr;  // signal() owed at the end of this batch
  bool posted_ = false;        // the signal handler is posted
};

}  // namespace shard::engine
