// A connection's receive queue (one byte buffer per side, swapped whole,
// packet_buffer.h): what it costs per packet, packets taken one by one while
// the IO thread appends, packets bigger than the buffers have grown to, and a
// burst's buffers let go once it is taken.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "alloc_counter.h"
#include "loopback_fixture.h"
#include "test_frames.h"

namespace shard::netproto {
namespace {

using namespace testing_loopback;

std::string text_of(std::span<const std::uint8_t> payload) { return {payload.begin(), payload.end()}; }

TEST_F(LoopbackTest, ReceivedPacketsAllocateNothingPerPacketOnceTheQueueHasGrown) {
  listen();
  auto c = client();
  auto s = accepted();
  const std::string payload(64, 'r');
  constexpr int kFrames = 500;
  std::size_t queued_allocations = 0, taken_allocations = 0;
  // The first bursts grow the three buffers the queue passes around (the IO
  // thread's, the queue's, the consumer's) and the sender's; the last one
  // reuses them.
  for (int burst = 1; burst <= 4; ++burst) {
    const std::size_t before = shard::testing::allocations();
    for (int i = 0; i < kFrames; ++i) ASSERT_EQ(c->send(notification(), bytes_of(payload)), Connection::SendResult::kQueued);
    ASSERT_TRUE(eventually([&] { return s->stats().recv_queued == kFrames; })) << "burst " << burst;
    queued_allocations = shard::testing::allocations() - before;
    const std::size_t before_taking = shard::testing::allocations();
    int taken = 0, wrong = 0;
    while (s->receive([&](const FrameHeader& header, std::span<const std::uint8_t> p) {
      wrong += header.kind != MessageKind::kNotification ||
               !std::equal(p.begin(), p.end(), payload.begin(), payload.end());
      ++taken;
    })) {
    }
    taken_allocations = shard::testing::allocations() - before_taking;
    ASSERT_EQ(taken, kFrames);
    ASSERT_EQ(wrong, 0);
  }
  // Before: one payload vector per packet, made on the IO thread.
  EXPECT_LT(queued_allocations, 10u) << "allocations for " << kFrames << " frames sent, read and queued";
  EXPECT_EQ(taken_allocations, 0u) << "allocations for taking " << kFrames << " packets";
}

TEST_F(LoopbackTest, PacketsTakenOneByOneWhileTheIoThreadAppendsArriveEveryOneInOrder) {
  config_.connection.max_recv_packets = 64;  // reading pauses and resumes many times too
  listen();
  auto c = client();
  auto s = accepted();
  constexpr int kPackets = 20000;
  std::thread sender([&] {
    for (int i = 0; i < kPackets; ++i) {
      // Sizes vary so that offsets in the shared buffer do too.
      const std::string text = std::to_string(i) + std::string(static_cast<std::size_t>(i % 97), '.');
      if (c->send(notification(), bytes_of(text)) != Connection::SendResult::kQueued) return;
      if (i % 256 == 255) std::this_thread::yield();
    }
  });
  int next = 0;
  std::string mismatch;
  const auto end = std::chrono::steady_clock::now() + 20s;
  while (next < kPackets && mismatch.empty() && std::chrono::steady_clock::now() < end) {
    auto check = [&](std::span<const std::uint8_t> payload) {
      const std::string want = std::to_string(next) + std::string(static_cast<std::size_t>(next % 97), '.');
      if (text_of(payload) != want) mismatch = "packet " + std::to_string(next) + ": got '" + text_of(payload) + "'";
      ++next;
    };
    // Both ways of taking share the one queue.
    if (next % 3 == 0) {
      if (auto p = s->try_receive()) check(p->payload);
    } else {
      s->receive([&](const FrameHeader&, std::span<const std::uint8_t> payload) { check(payload); });
    }
  }
  sender.join();
  EXPECT_EQ(mismatch, "");
  EXPECT_EQ(next, kPackets) << "suspected stall: reading paused and never resumed";
  EXPECT_FALSE(s->try_receive().has_value());
  EXPECT_EQ(s->stats().recv_queued, 0u);
}

TEST_F(LoopbackTest, PacketsBiggerThanTheBuffersArriveWholeBetweenSmallOnes) {
  for (Limits* limits : {&config_.connection.decoder.limits, &config_.connection.encoder.limits}) {
    limits->max_frame_bytes = 8u << 20;
    limits->max_decompressed_bytes = 8u << 20;
  }
  listen();
  auto c = client();
  auto s = accepted();
  std::vector<std::vector<std::uint8_t>> payloads;
  for (std::size_t size : {std::size_t{10}, std::size_t{3} << 20, std::size_t{20}, std::size_t{700} << 10, std::size_t{5}}) {
    payloads.push_back(testing::incompressible(size, static_cast<unsigned>(size)));
  }
  // The small ones first grow the buffers a little; the big ones arrive over
  // many reads into the same queue.
  for (auto& p : payloads) ASSERT_EQ(c->send(notification(), p), Connection::SendResult::kQueued);
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    bool same = false;
    ASSERT_TRUE(eventually([&] {
      return s->receive([&](const FrameHeader&, std::span<const std::uint8_t> p) {
        same = std::equal(p.begin(), p.end(), payloads[i].begin(), payloads[i].end());
      });
    })) << "packet " << i;
    EXPECT_TRUE(same) << "packet " << i << " of " << payloads[i].size() << " bytes";
  }
  EXPECT_FALSE(s->closed()) << s->close_detail();
}

TEST_F(LoopbackTest, ABurstsReceiveBuffersAreLetGoOnceItsLastPacketIsTaken) {
  listen();
  auto c = client();
  auto s = accepted();
  // 4 MiB queued at once, far past the 256 KiB of buffers a connection keeps.
  const std::string payload(16u << 10, 'b');
  constexpr int kFrames = 256;
  const std::size_t before = shard::testing::live_bytes();
  for (int i = 0; i < kFrames; ++i) ASSERT_EQ(c->send(notification(), bytes_of(payload)), Connection::SendResult::kQueued);
  ASSERT_TRUE(eventually([&] { return s->stats().recv_queued == kFrames; }));
  int taken = 0;
  while (s->receive([&](const FrameHeader&, std::span<const std::uint8_t> p) { taken += p.size() == payload.size(); })) {
  }
  ASSERT_EQ(taken, kFrames);
  // The consumer comes back only to find the queue empty, which it learns
  // without reaching the queue's buffers: taking the last packet let them go.
  bool closed = true;
  EXPECT_FALSE(s->receive([](const FrameHeader&, std::span<const std::uint8_t>) {}, &closed));
  EXPECT_FALSE(closed);
  constexpr std::size_t kSlack = 1u << 20;  // the buffers kept, and the sender's until its write is done
  EXPECT_TRUE(eventually([&] { return shard::testing::live_bytes() < before + kSlack; }))
      << shard::testing::live_bytes() - before << " bytes more in use than before the burst";
}

TEST_F(LoopbackTest, AnEmptyQueueSaysWhetherTheConnectionIsClosedAndQueuedPacketsStayReadable) {
  listen();
  auto c = client();
  auto s = accepted();
  auto ignore = [](const FrameHeader&, std::span<const std::uint8_t>) {};
  bool closed = true;
  EXPECT_FALSE(s->receive(ignore, &closed));
  EXPECT_FALSE(closed);
  ASSERT_EQ(c->send(notification(), bytes_of("last")), Connection::SendResult::kQueued);
  ASSERT_TRUE(eventually([&] { return s->stats().recv_queued == 1; }));
  c->close();
  ASSERT_TRUE(eventually([&] { return s->closed(); }));
  std::string got;
  EXPECT_TRUE(s->receive([&](const FrameHeader&, std::span<const std::uint8_t> p) { got = text_of(p); }, &closed));
  EXPECT_EQ(got, "last");
  EXPECT_FALSE(s->receive(ignore, &closed));
  EXPECT_TRUE(closed);
}

}  // namespace
}  // namespace shard::netproto
