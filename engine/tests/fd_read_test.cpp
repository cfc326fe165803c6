// read_packet() from C++, on the main tasklet of an embedded interpreter: a
// length-framed packet read and framed on an IO thread, the ends of the stream,
// the size limit, and the deadline.
#include "shard/engine/fd_read.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <string>
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

// A non-blocking stream socket pair (read_packet's descriptor must be non-blocking).
struct Pair {
  Pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0); }
  ~Pair() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  void send(const std::string& bytes) const { ASSERT_EQ(::write(fds[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size())); }
  void close_writer() {
    ::close(fds[1]);
    fds[1] = -1;
  }
  int fds[2] = {-1, -1};
};

std::string framed(const std::string& payload) {
  const auto n = static_cast<uint32_t>(payload.size());
  std::string header{static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n)};
  return header + payload;
}

TEST(FdRead, ReadsPacketsWrittenWholeOrInPiecesByAnotherThread) {
  Pair pair;
  pair.send(framed("first") + framed(""));
  auto first = read_packet(pair.fds[0], 1 << 20, in_ms(5000));
  ASSERT_TRUE(first) << first.error.message();
  EXPECT_EQ(first.value->end, PacketRead::End::kPacket);
  EXPECT_EQ(std::string(first.value->payload.begin(), first.value->payload.end()), "first");
  auto empty = read_packet(pair.fds[0], 1 << 20, in_ms(5000));
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty.value->payload.empty());
  const std::string big(300000, 'x');
  std::thread writer([&] {
    const std::string bytes = framed(big);
    for (std::size_t at = 0; at < bytes.size(); at += 70000) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      const std::string piece = bytes.substr(at, 70000);
      std::size_t sent = 0;
      while (sent < piece.size()) {
        ssize_t n = ::write(pair.fds[1], piece.data() + sent, piece.size() - sent);
        if (n > 0) sent += static_cast<std::size_t>(n);
        else std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
  });
  auto whole = read_packet(pair.fds[0], 1 << 20, in_ms(10000));
  writer.join();
  ASSERT_TRUE(whole) << whole.error.message();
  EXPECT_EQ(whole.value->payload.size(), big.size());
}

TEST(FdRead, TheEndsOfTheStreamAndTheLimitAreReported) {
  Pair eof_between;
  eof_between.close_writer();
  EXPECT_EQ(read_packet(eof_between.fds[0], 100, in_ms(5000)).value->end, PacketRead::End::kEof);
  Pair eof_inside;
  eof_inside.send(std::string("\0\0\0\x09short", 9));
  eof_inside.close_writer();
  EXPECT_EQ(read_packet(eof_inside.fds[0], 100, in_ms(5000)).value->end, PacketRead::End::kEofInside);
  Pair too_large;
  too_large.send(framed(std::string(101, 'x')));
  auto refused = read_packet(too_large.fds[0], 100, in_ms(5000));
  EXPECT_EQ(refused.value->end, PacketRead::End::kTooLarge);
  EXPECT_EQ(refused.value->size, 101u);
}

TEST(FdRead, TheDeadlineEndsAReadOfNothing) {
  Pair pair;
  EXPECT_EQ(read_packet(pair.fds[0], 100, in_ms(50)).error, WaitError::kTimedOut);
  EXPECT_EQ(read_packet(-1, 100, 0).error, std::errc::bad_file_descriptor);
}

}  // namespace
}  // namespace shard::engine
