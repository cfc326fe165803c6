#pragma once
// The reactor seam: a tasklet waits for an asynchronous operation (on an IO
// thread, shard/engine/io_pool.h) while every other tasklet runs.
//
//   std::error_code error = await_completion(start, cancel, deadline_ns);
//
// `start(done)` starts the operation (on the GIL-holding thread of the
// caller: post the real initiation to the operation's io_context); `done` is
// called exactly once, from any thread, with the operation's outcome (later
// calls are ignored; a Completer dropped uncalled completes with
// std::errc::operation_canceled, so a destroyed handler cannot strand its
// tasklet). `cancel()` is called, from the waiting thread or from
// IoPool::stop(), when the wait is given up: the tasklet was killed (or had an
// exception thrown in), the deadline passed, or the engine stops; it must
// make the operation complete soon (close or cancel its Asio object, again
// posted to its context) and be safe to call at any time, more than once.
//
// The completion wakes the tasklet through the dispatcher's completion queue,
// under whichever dispatch strategy is in force (shard/engine/dispatcher.h),
// exactly like an off-thread request: Dispatcher::wait() is the one wait
// beneath both. Nothing here runs Python on an IO thread, except the
// interpreter lock taken there by the worker_acquires_gil strategy, and to
// wake a tasklet of another thread than the main one.
//
// Results: the operation's error code, or one of WaitError (below). A typed
// result travels with await_result<T>() and a TypedCompleter<T>. No C++
// exception crosses the wait: whatever start() throws becomes an error code.
//
// GIL held, inside a tasklet (the main tasklet of a thread counts) of any thread.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <system_error>
#include <type_traits>

namespace shard::engine {

// Why a wait ended without the operation's own outcome.
enum class WaitError {
  kInterrupted = 1,  // killed, or an exception thrown in: that Python error is set
  kTimedOut,         // the deadline passed (the operation was cancelled)
  kStopped,          // the IO threads are stopped: nothing was started
  kNoDispatcher,     // the engine's dispatcher is not started (RuntimeError is set)
};
}  // namespace shard::engine

template <>
struct std::is_error_code_enum<shard::engine::WaitError> : std::true_type {};

namespace shard::engine {

struct Request;
class Dispatcher;

const std::error_category& wait_category();
inline std::error_code make_error_code(WaitError e) { return {static_cast<int>(e), wait_category()}; }

// Turns a failed wait into the Python exception for it (GIL held): nothing
// new for kInterrupted and kNoDispatcher (already set), TimeoutError for
// kTimedOut, OSError(errno, "<what>: <message>") for a system error (a
// cancelled operation: ECANCELED), OSError("<what>: <message>") otherwise.
// Returns null, for `return raise_wait_error(...)`.
std::nullptr_t raise_wait_error(std::error_code error, const char* what);

namespace detail {
struct PendingCompletion;
}  // namespace detail

// The operation's end, handed to start(). Copyable; the first call wins.
class Completer final {
 public:
  explicit Completer(std::shared_ptr<detail::PendingCompletion> state) : state_(std::move(state)) {}
  void operator()(std::error_code error = {}) const noexcept {
    if (claim()) finish(error);
  }
  // For completers that deliver a value first: claim() is true for exactly
  // one caller, who stores the value and then calls finish().
  bool claim() const noexcept;
  void finish(std::error_code error) const noexcept;

 private:
  std::shared_ptr<detail::PendingCompletion> state_;
};

using StartFn = std::function<void(Completer)>;
using CancelFn = std::function<void()>;

// Parks the current tasklet until the operation completes; deadline_ns is on
// the engine's steady clock (0: none). See the header comment.
std::error_code await_completion(const StartFn& start, const CancelFn& cancel, int64_t deadline_ns);

// A value or the reason there is none.
template <class T>
struct Outcome {
  std::error_code error;
  std::optional<T> value;  // set exactly when !error
  explicit operator bool() const { return !error; }
};

// done(value) or done(error): the first call wins.
template <class T>
class TypedCompleter final {
 public:
  TypedCompleter(Completer done, std::shared_ptr<std::optional<T>> slot) : done_(std::move(done)), slot_(std::move(slot)) {}
  void operator()(T value) const noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (!done_.claim()) return;
    slot_->emplace(std::move(value));
    done_.finish({});
  }
  void operator()(std::error_code error) const noexcept { done_(error); }

 private:
  Completer done_;
  std::shared_ptr<std::optional<T>> slot_;
};

// await_completion with a typed result: start(TypedCompleter<T>).
template <class T, class Start>
Outcome<T> await_result(Start&& start, const CancelFn& cancel, int64_t deadline_ns) {
  // The slot outlives a wait given up on: a late completion writes into it.
  std::shared_ptr<std::optional<T>> slot;
  try {
    slot = std::make_shared<std::optional<T>>();
  } catch (const std::bad_alloc&) {
    return {std::make_error_code(std::errc::not_enough_memory), std::nullopt};
  }
  std::error_code error = await_completion(
      [&](Completer done) { start(TypedCompleter<T>(std::move(done), slot)); }, cancel, deadline_ns);
  // A success without a value is the operation's bug, not a value.
  if (!error && !slot->has_value()) error = std::make_error_code(std::errc::bad_message);
  Outcome<T> outcome{error, std::nullopt};
  if (!error) outcome.value = std::move(*slot);
  return outcome;
}

}  // namespace shard::engine
