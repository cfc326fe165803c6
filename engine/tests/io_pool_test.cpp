// The IO threads from C++, without Python: their count, where handlers run,
// and a stop() that cancels what is waited for, joins, and is bounded.
#include "shard/engine/io_pool.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <future>
#include <stdexcept>

#include "shard/engine/asio.h"
#include "shard/engine/await_completion.h"

namespace shard::engine {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

TEST(IoPool, StartsTheRequestedThreadsAndRunsHandlersOnThem) {
  IoPool pool;
  ASSERT_FALSE(pool.start(3));
  EXPECT_EQ(pool.threads(), 3);
  EXPECT_TRUE(pool.running());
  std::promise<std::thread::id> ran_on;
  asio::post(*pool.next_context(), [&] { ran_on.set_value(std::this_thread::get_id()); });
  EXPECT_NE(ran_on.get_future().get(), std::this_thread::get_id());
  pool.stop();
  EXPECT_EQ(pool.threads(), 0);
  EXPECT_FALSE(pool.running());
  EXPECT_EQ(pool.next_context(), nullptr);
}

TEST(IoPool, ThreadCountComesFromTheEnvironmentWhenNotGiven) {
  ::setenv("SHARD_IO_THREADS", "3", 1);
  IoPool pool;
  ASSERT_FALSE(pool.start());
  EXPECT_EQ(pool.threads(), 3);
  ::unsetenv("SHARD_IO_THREADS");
  pool.stop();
  ASSERT_FALSE(pool.start());
  EXPECT_EQ(pool.threads(), IoPool::kDefaultThreads);
}

TEST(IoPool, StartingARunningPoolIsAnErrorAndRestartingAStoppedOneWorks) {
  IoPool pool;
  ASSERT_FALSE(pool.start(1));
  EXPECT_EQ(pool.start(1), std::errc::operation_in_progress);
  pool.stop();
  ASSERT_FALSE(pool.start(2));
  std::promise<void> ran;
  asio::post(*pool.next_context(), [&] { ran.set_value(); });
  EXPECT_EQ(ran.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
}

TEST(IoPool, StopCancelsTheRegisteredWaitsOperationAndItsHandlerRunsBeforeStopReturns) {
  IoPool pool;
  ASSERT_FALSE(pool.start(1));
  auto context = pool.next_context();
  asio::steady_timer timer(*context);
  boost::system::error_code seen;
  bool handler_ran = false;
  asio::post(*context, [&] {
    timer.expires_after(std::chrono::seconds(30));
    timer.async_wait([&](const boost::system::error_code& error) {
      seen = error;
      handler_ran = true;
    });
  });
  std::function<void()> cancel = [&] { asio::post(*context, [&] { timer.cancel(); }); };
  {
    IoPool::Registration waiting(pool, &cancel);
    EXPECT_EQ(pool.stats().waits, 1u);
    auto start = Clock::now();
    pool.stop();
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));
  }
  EXPECT_TRUE(handler_ran);  // threads joined: no race reading these
  EXPECT_EQ(seen, asio::error::operation_aborted);
  EXPECT_EQ(to_error_code(seen), std::errc::operation_canceled);
  EXPECT_EQ(pool.stats().cancellations, 1u);
  EXPECT_EQ(pool.stats().waits, 0u);
}

TEST(IoPool, AnOperationIgnoringItsCancellationIsAbandonedAfterTheGrace) {
  IoPool pool;
  ASSERT_FALSE(pool.start(1));
  auto context = pool.next_context();
  auto timer = std::make_shared<asio::steady_timer>(*context);
  asio::post(*context, [timer] {
    timer->expires_after(std::chrono::seconds(30));
    timer->async_wait([](const boost::system::error_code&) {});  // never called: abandoned
  });
  auto start = Clock::now();
  pool.stop(milliseconds(100));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(pool.threads(), 0);
}

TEST(IoPool, AHandlerThatThrowsIsCountedAndItsThreadGoesOn) {
  IoPool pool;
  ASSERT_FALSE(pool.start(1));
  auto context = pool.next_context();
  asio::post(*context, [] { throw std::runtime_error("handler failed on purpose"); });
  std::promise<void> after;
  asio::post(*context, [&] { after.set_value(); });
  EXPECT_EQ(after.get_future().wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(pool.stats().handler_errors, 1u);
}

TEST(WaitError, MapsToTheStandardConditions) {
  EXPECT_EQ(make_error_code(WaitError::kTimedOut), std::errc::timed_out);
  EXPECT_EQ(make_error_code(WaitError::kStopped), std::errc::operation_canceled);
  EXPECT_NE(make_error_code(WaitError::kInterrupted), std::errc::interrupted);
  EXPECT_STREQ(wait_category().name(), "shard.wait");
  EXPECT_EQ(std::error_code(WaitError::kTimedOut).message(), "the operation did not complete before its deadline");
}

TEST(AsioErrors, KeepErrnoValuesInTheSystemCategory) {
  std::error_code refused = to_error_code(asio::error::connection_refused);
  EXPECT_EQ(refused, std::errc::connection_refused);
  EXPECT_EQ(&refused.category(), &std::system_category());
  EXPECT_FALSE(to_error_code(boost::system::error_code()));
}

}  // namespace
}  // namespace shard::engine
