// wait_ready() from C++, on the main tasklet of an embedded interpreter:
// readiness of descriptors the engine does not own, seen on the IO threads;
// the deadline; the copies it registers are closed again; bad arguments.
#include "shard/engine/fd_wait.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "shard/engine/dispatcher.h"
#include "shard/engine/engine_module.h"
#include "shard/engine/io_pool.h"
#include "shard/engine/stackless_module.h"
#include "io_test_environment.h"

namespace shard::engine {
namespace {

using Clock = std::chrono::steady_clock;

using testing::in_ms;

struct Pipe {
  Pipe() { EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0); }
  ~Pipe() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  int fds[2] = {-1, -1};
  int read_end() const { return fds[0]; }
  int write_end() const { return fds[1]; }
};

// How many descriptors of this process refer to the same file as `fd` (both
// ends of a pipe share one inode). Counted per file, not over the whole
// process: the copies of an earlier test's wait may still be open, closed by
// an IO thread just after that wait ended, and would move a process-wide count.
std::size_t descriptors_of(int fd) {
  struct stat target {};
  EXPECT_EQ(::fstat(fd, &target), 0);
  std::size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    struct stat seen {};
    if (::stat(entry.path().c_str(), &seen) == 0 && seen.st_dev == target.st_dev && seen.st_ino == target.st_ino) ++n;
  }
  return n;
}

// The copies are closed by the last handler, on an IO thread, just after the
// wait ends: give it until a deadline only a leak (or a hang) exceeds.
void expect_descriptors_of_back_to(int fd, std::size_t expected) {
  const auto give_up = Clock::now() + std::chrono::seconds(10);
  while (descriptors_of(fd) != expected && Clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(descriptors_of(fd), expected);
}

TEST(FdWait, EndsWhenAnotherThreadMakesThePipeReadable) {
  Pipe pipe;
  const auto start = Clock::now();
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(::write(pipe.write_end(), "x", 1), 1);
  });
  std::error_code error = wait_ready({{pipe.read_end(), POLLIN}}, 0);
  writer.join();
  EXPECT_FALSE(error) << error.message();
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(40));
}

TEST(FdWait, AReadyDescriptorEndsTheWaitAtOnce) {
  Pipe pipe;
  EXPECT_FALSE(wait_ready({{pipe.write_end(), POLLOUT}}, in_ms(5000)));
  ASSERT_EQ(::write(pipe.write_end(), "x", 1), 1);
  EXPECT_FALSE(wait_ready({{pipe.read_end(), POLLIN}}, in_ms(5000)));
}

TEST(FdWait, TheFirstReadyOfSeveralEndsIt) {
  Pipe quiet, busy;
  ASSERT_EQ(::write(busy.write_end(), "x", 1), 1);
  EXPECT_FALSE(wait_ready({{quiet.read_end(), POLLIN}, {busy.read_end(), POLLIN}}, in_ms(5000)));
}

TEST(FdWait, AClosedWriteEndWakesTheReader) {
  Pipe pipe;
  ::close(pipe.fds[1]);
  pipe.fds[1] = -1;
  EXPECT_FALSE(wait_ready({{pipe.read_end(), POLLIN}}, in_ms(5000)));
}

TEST(FdWait, TheDeadlineEndsAWaitForNothingAndTheCopiesAreClosed) {
  Pipe pipe;
  ASSERT_EQ(descriptors_of(pipe.read_end()), 2u);  // the read end and the write end
  const auto start = Clock::now();
  EXPECT_EQ(wait_ready({{pipe.read_end(), POLLIN | POLLPRI}}, in_ms(50)), WaitError::kTimedOut);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(40));
  expect_descriptors_of_back_to(pipe.read_end(), 2);
  ASSERT_EQ(::write(pipe.write_end(), "x", 1), 1);
  EXPECT_FALSE(wait_ready({{pipe.read_end(), POLLIN}}, in_ms(5000)));  // the same descriptor, again
  expect_descriptors_of_back_to(pipe.read_end(), 2);
}

TEST(FdWait, ARegularFileIsAlwaysReady) {
  std::FILE* file = std::tmpfile();
  ASSERT_NE(file, nullptr);
  EXPECT_FALSE(wait_ready({{::fileno(file), POLLIN}}, in_ms(5000)));
  std::fclose(file);
}

TEST(FdWait, BadArgumentsAreErrorsWithoutAWait) {
  Pipe pipe;
  const int closed = ::dup(pipe.read_end());
  ::close(closed);
  EXPECT_EQ(wait_ready({{closed, POLLIN}}, 0), std::errc::bad_file_descriptor);
  EXPECT_EQ(wait_ready({{pipe.read_end(), 0}}, 0), std::errc::invalid_argument);
  EXPECT_EQ(wait_ready({}, 0), std::errc::invalid_argument);
}

}  // namespace
}  // namespace shard::engine
