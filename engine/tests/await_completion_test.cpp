// await_completion() from C++, on the main tasklet of an embedded interpreter:
// the contract of its header for what Python cannot reach (a completion that
// arrives as the operation starts, a completer dropped uncalled, a start that
// throws, a second completion, a typed result made on an IO thread).
#include "shard/engine/await_completion.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <thread>

#include "shard/engine/asio.h"
#include "shard/engine/dispatcher.h"
#include "shard/engine/engine_module.h"
#include "shard/engine/io_pool.h"
#include "shard/engine/stackless_module.h"
#include "io_test_environment.h"

namespace shard::engine {
namespace {

namespace asio = boost::asio;

using testing::in_ms;

const CancelFn kNoCancel = [] {};

// Runs `operation` on an IO thread, which calls done() itself.
StartFn on_io_thread(std::function<void(Completer)> operation) {
  return [operation](Completer done) { asio::post(*IoPool::instance().next_context(), [=] { operation(done); }); };
}

TEST(AwaitCompletion, ReturnsTheOutcomeGivenOnAnIoThread) {
  std::thread::id completed_on;
  auto error = await_completion(on_io_thread([&](Completer done) {
                                  completed_on = std::this_thread::get_id();
                                  done(std::make_error_code(std::errc::connection_reset));
                                }),
                                kNoCancel, 0);
  EXPECT_EQ(error, std::errc::connection_reset);
  EXPECT_NE(completed_on, std::this_thread::get_id());
  EXPECT_FALSE(await_completion(on_io_thread([](Completer done) { done(); }), kNoCancel, 0));
}

TEST(AwaitCompletion, ACompletionAsTheOperationStartsEndsTheWait) {
  auto error = await_completion([](Completer done) { done(std::make_error_code(std::errc::address_in_use)); },
                                kNoCancel, 0);
  EXPECT_EQ(error, std::errc::address_in_use);
}

TEST(AwaitCompletion, ACompleterDroppedUncalledEndsTheWaitAsCancelled) {
  EXPECT_EQ(await_completion([](Completer) {}, kNoCancel, 0), std::errc::operation_canceled);
  EXPECT_EQ(await_completion(on_io_thread([](Completer) {}), kNoCancel, 0), std::errc::operation_canceled);
}

TEST(AwaitCompletion, WhatStartThrowsBecomesTheErrorCode) {
  auto refused = await_completion(
      [](Completer) { throw std::system_error(std::make_error_code(std::errc::connection_refused)); }, kNoCancel, 0);
  EXPECT_EQ(refused, std::errc::connection_refused);
  auto other = await_completion([](Completer) { throw std::runtime_error("start failed"); }, kNoCancel, 0);
  EXPECT_EQ(other, std::errc::state_not_recoverable);
}

TEST(AwaitCompletion, TheFirstCompletionWins) {
  auto error = await_completion(on_io_thread([](Completer done) {
                                  done(std::make_error_code(std::errc::timed_out));
                                  done();  // ignored
                                }),
                                kNoCancel, 0);
  EXPECT_EQ(error, std::errc::timed_out);
}

TEST(AwaitCompletion, TheDeadlineCancelsTheOperationOnceAndItsLateCompletionIsDropped) {
  int cancels = 0;
  std::optional<Completer> pending;  // the operation, still running after the deadline
  auto error = await_completion([&](Completer done) { pending = done; }, [&] { ++cancels; }, in_ms(20));
  EXPECT_EQ(error, WaitError::kTimedOut);
  EXPECT_EQ(error, std::errc::timed_out);
  EXPECT_EQ(cancels, 1);
  EXPECT_EQ(Dispatcher::instance().in_flight(), 1u);
  (*pending)();
  pending.reset();
  Dispatcher::instance().drain();  // drops it: the wait it was for is over
  EXPECT_EQ(Dispatcher::instance().in_flight(), 0u);
}

TEST(AwaitResult, DeliversAValueMadeOnAnIoThread) {
  auto outcome = await_result<std::string>(
      [](TypedCompleter<std::string> done) {
        asio::post(*IoPool::instance().next_context(), [done] { done(std::string("made on an IO thread")); });
      },
      kNoCancel, 0);
  ASSERT_TRUE(outcome);
  EXPECT_EQ(*outcome.value, "made on an IO thread");
}

TEST(AwaitResult, AnErrorHasNoValueAndASuccessWithoutOneIsAnError) {
  auto failed = await_result<int>([](TypedCompleter<int> done) { done(std::make_error_code(std::errc::io_error)); },
                                  kNoCancel, 0);
  EXPECT_EQ(failed.error, std::errc::io_error);
  EXPECT_FALSE(failed.value.has_value());
  auto empty = await_result<int>([](TypedCompleter<int> done) { done(std::error_code()); }, kNoCancel, 0);
  EXPECT_EQ(empty.error, std::errc::bad_message);
}

TEST(AwaitCompletion, StoppedIoThreadsAreReportedWithoutStartingAnything) {
  Py_BEGIN_ALLOW_THREADS
  IoPool::instance().stop();
  Py_END_ALLOW_THREADS
  bool started = false;
  EXPECT_EQ(await_completion([&](Completer) { started = true; }, kNoCancel, 0), WaitError::kStopped);
  EXPECT_FALSE(started);
  ASSERT_FALSE(IoPool::instance().start(1));
}

}  // namespace
}  // namespace shard::engine
