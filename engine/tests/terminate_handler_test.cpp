// The terminate handler: what it reports, for each way into std::terminate
// that a shard process has met.
#include "shard/engine/terminate_handler.h"

#include <gtest/gtest.h>

#include <exception>
#include <stdexcept>
#include <thread>

namespace shard::engine {
namespace {

// The handler's own frame must be named in the backtrace (the binaries are
// linked with their symbols exported for backtrace_symbols_fd).
constexpr const char* kBacktrace = "C\\+\\+ backtrace of the terminating thread:.*report_terminate_and_abort";

[[gnu::noinline]] void throw_runtime_error() { throw std::runtime_error("the widget is upside down"); }
void throw_through_noexcept() noexcept { throw_runtime_error(); }

class TerminateHandlerDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(TerminateHandlerDeathTest, ReportsTheActiveExceptionsTypeAndWhatWithTheBacktrace) {
  EXPECT_DEATH(
      {
        install_terminate_handler();
        throw_through_noexcept();
      },
      std::string("active exception of type std::runtime_error: the widget is upside down\n.*").append(kBacktrace));
}

TEST_F(TerminateHandlerDeathTest, ReportsAJoinableThreadDestroyedWithTheBacktrace) {
  EXPECT_DEATH(
      {
        install_terminate_handler();
        std::thread never_joined([] {});
      },
      std::string("std::terminate called without an active exception\n.*").append(kBacktrace));
}

TEST_F(TerminateHandlerDeathTest, ReportsAForcedUnwindThroughANoexceptFrame) {
  // What CPython 3.11 does to a thread that takes the interpreter lock while
  // the interpreter finalizes: pthread_exit, whose unwinding stops at noexcept.
  EXPECT_DEATH(
      {
        install_terminate_handler();
        std::thread exits([]() noexcept { pthread_exit(nullptr); });
        exits.join();
      },
      std::string("without an active exception\n.*").append(kBacktrace));
}

}  // namespace
}  // namespace shard::engine
