#include "shard/engine/await_completion.h"

#include <new>
#include <optional>

#include "core/clock.h"
#include "io/io_batch.h"
#include "shard/engine/dispatcher.h"
#include "shard/engine/io_pool.h"
#include "shard/engine/request.h"

namespace shard::engine {

namespace detail {

// What a Completer completes: the request, until the first call takes it.
// Holds no Python object itself, so the last Completer may die on any thread.
struct PendingCompletion {
  std::atomic<bool> claimed{false};
  std::shared_ptr<Request> request;  // moved into the dispatcher by finish()
  Dispatcher* dispatcher = nullptr;

  ~PendingCompletion() {
    // Dropped uncalled (a handler destroyed with its io_context): the wait
    // must still end, and the request must reach the dispatcher, which drops
    // it with the interpreter lock held.
    if (!claimed.exchange(true)) finish(std::make_error_code(std::errc::operation_canceled));
  }

  void finish(std::error_code error) noexcept {
    std::shared_ptr<Request> r = std::move(request);
    if (r == nullptr) return;
    r->outcome = error;
    r->completed_ns = now_ns();
    // On an IO thread the main thread is woken once per batch (io_batch.h).
    if (IoBatch* batch = IoBatch::current()) {
      if (dispatcher->enqueue(std::move(r))) batch->signal_later(*dispatcher);
    } else {
      dispatcher->complete(std::move(r));
    }
  }
};

}  // namespace detail

bool Completer::claim() const noexcept { return !state_->claimed.exchange(true); }

void Completer::finish(std::error_code error) const noexcept { state_->finish(error); }

namespace {

// The start() of Dispatcher::wait(): runs the caller's start with the only
// other completer; anything it throws completes the operation with an error
// instead of crossing the wait.
bool start_operation(const StartFn& start, std::optional<Completer>& done) {
  try {
    start(*done);
  } catch (const std::bad_alloc&) {
    (*done)(std::make_error_code(std::errc::not_enough_memory));
  } catch (const std::system_error& e) {
    (*done)(e.code());
  } catch (...) {
    (*done)(std::make_error_code(std::errc::state_not_recoverable));
  }
  // From here the operation alone holds the completion: if it drops it
  // uncalled, the wait ends as cancelled instead of never.
  done.reset();
  return true;
}

}  // namespace

std::error_code await_completion(const StartFn& start, const CancelFn& cancel, int64_t deadline_ns) {
  Dispatcher* dispatcher = Dispatcher::get();
  if (dispatcher == nullptr) return WaitError::kNoDispatcher;
  IoPool& pool = IoPool::instance();
  // Registered before anything starts, so a stop() that begins meanwhile
  // cancels this operation too.
  IoPool::Registration registration(pool, &cancel);
  if (!registration.registered()) return std::make_error_code(std::errc::not_enough_memory);
  if (!pool.running()) return WaitError::kStopped;
  std::shared_ptr<Request> request;
  std::optional<Completer> done;
  try {
    request = std::make_shared<Request>();
    auto state = std::make_shared<detail::PendingCompletion>();
    state->request = request;
    state->dispatcher = dispatcher;
    done.emplace(std::move(state));
  } catch (const std::bad_alloc&) {
    return std::make_error_code(std::errc::not_enough_memory);
  }
  switch (dispatcher->wait(request, deadline_ns, [&] { return start_operation(start, done); })) {
    case Dispatcher::WaitEnd::kCompleted:
      return request->outcome;
    case Dispatcher::WaitEnd::kTimedOut:
      pool.cancel(cancel);
      return WaitError::kTimedOut;
    case Dispatcher::WaitEnd::kNotStarted:
      // No tasklet to park (the Python error says why): start() never ran,
      // so the completion is withdrawn, not delivered for a wait that never was.
      if (done && done->claim()) done.reset();
      return WaitError::kInterrupted;
    case Dispatcher::WaitEnd::kInterrupted:
      break;
  }
  // Killed (TaskletExit is set) or could not park: the operation must not
  // outlive its purpose. Its late completion is dropped by the dispatcher.
  pool.cancel(cancel);
  return WaitError::kInterrupted;
}

}  // namespace shard::engine
