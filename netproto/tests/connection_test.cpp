// Connections and the listener on a loopback pair, one io_context on its own
// thread standing for an IO thread: read-ahead, batching, the native path,
// hostile input closing only its connection, backpressure, idle timeout and
// the per-address limit.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shard/netproto/connection.h"
#include "shard/netproto/listener.h"
#include "shard/netproto/native_handlers.h"
#include "alloc_counter.h"
#include "loopback_fixture.h"
#include "test_frames.h"

namespace shard::netproto {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using namespace testing_loopback;

TEST_F(LoopbackTest, PacketsArriveInOrderAndAreReadAheadBeforeAnyoneAsks) {
  listen();
  auto c = client();
  auto s = accepted();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(c->send(notification(), bytes_of(std::to_string(i))), Connection::SendResult::kQueued);
  // Nobody asked: the IO thread framed and queued them all.
  ASSERT_TRUE(eventually([&] { return s->stats().recv_queued == 1000; }));
  for (int i = 0; i < 1000; ++i) {
    auto p = s->try_receive();
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(text_of(*p), std::to_string(i));
  }
  EXPECT_FALSE(s->try_receive().has_value());
  // Sends queued faster than a write completes go out together.
  EXPECT_LT(c->stats().writes, 1000u);
}

TEST_F(LoopbackTest, ProcessTotalsCountEveryConnectionsPacketsAndWireBytesClosedOnesToo) {
  listen();
  const Connection::Totals before = Connection::totals();
  auto c = client();
  auto s = accepted();
  for (int i = 0; i < 10; ++i) ASSERT_EQ(c->send(notification(), bytes_of("0123456789")), Connection::SendResult::kQueued);
  ASSERT_TRUE(eventually([&] { return s->stats().recv_queued == 10; }));
  const std::uint64_t wire = 10 * frame_bytes("0123456789").size();
  c->close();
  s->close();
  const Connection::Totals after = Connection::totals();
  // Both ends are in this process: the totals hold the sender's and the receiver's side.
  EXPECT_EQ(after.packets_out - before.packets_out, 10u);
  EXPECT_EQ(after.packets_in - before.packets_in, 10u);
  EXPECT_EQ(after.bytes_out - before.bytes_out, wire);
  EXPECT_EQ(after.bytes_in - before.bytes_in, wire);
}

TEST_F(LoopbackTest, CompressedFramesRoundTripOnceTheCodecIsSet) {
  config_.connection.decoder = testing::accept_all();
  listen();
  auto c = client();
  auto s = accepted();
  c->set_codec(Codec::kZlib, codec_bit(Codec::kNone) | codec_bit(Codec::kZlib));
  auto big = testing::compressible(100'000);
  ASSERT_EQ(c->send(notification(), big), Connection::SendResult::kQueued);
  std::optional<Packet> p;
  ASSERT_TRUE(eventually([&] { return (p = s->try_receive()).has_value(); }));
  EXPECT_EQ(p->payload, big);
  EXPECT_LT(c->stats().bytes_out, 50'000u);  // it travelled compressed
}

TEST_F(LoopbackTest, GatheredPartsTravelAsOnePayload) {
  listen();
  auto c = client();
  auto s = accepted();
  std::string a = "ab", b = "", d = "cde";
  std::span<const std::uint8_t> parts[] = {bytes_of(a), bytes_of(b), bytes_of(d)};
  ASSERT_EQ(c->send(notification(), parts), Connection::SendResult::kQueued);
  std::optional<Packet> p;
  ASSERT_TRUE(eventually([&] { return (p = s->try_receive()).has_value(); }));
  EXPECT_EQ(text_of(*p), "abcde");
}

// Runs `f` on the IO thread (the loop's context) and waits for it.
template <class F>
void on_io_thread(asio::io_context& context, F f) {
  std::promise<void> done;
  asio::post(context, [&] {
    f();
    done.set_value();
  });
  done.get_future().get();
}

TEST_F(LoopbackTest, QueuedSendsAllocateNothingPerFrameOnceTheQueueHasGrown) {
  listen();
  auto c = client();
  auto s = accepted();
  const std::string payload(64, 'x');
  constexpr int kFrames = 1000;
  std::size_t allocations = 0;
  // The first two bursts grow the queue's two buffers; the third reuses them.
  for (int burst = 1; burst <= 3; ++burst) {
    on_io_thread(context_, [&] {
      const std::size_t before = shard::testing::allocations();
      for (int i = 0; i < kFrames; ++i) ASSERT_EQ(c->send(notification(), bytes_of(payload)), Connection::SendResult::kQueued);
      allocations = shard::testing::allocations() - before;
    });
    ASSERT_TRUE(eventually([&] { return c->written_seq() == std::uint64_t{kFrames} * burst; }));
  }
  EXPECT_LT(allocations, 10u) << "allocations for " << kFrames << " queued frames";
  ASSERT_TRUE(eventually([&] { return s->stats().recv_queued == 3 * kFrames; }));
  for (int i = 0; i < 3 * kFrames; ++i) EXPECT_EQ(text_of(*s->try_receive()), payload);
}

TEST_F(LoopbackTest, SendsFromAnotherThreadAllocateNothingEvenWhenEachOneIsPosted) {
  listen();
  auto reader = raw_client();  // reads at the end: the socket buffer holds it all
  auto server = accepted();
  const std::string payload(64, 'y');
  // Each send finds the queue idle, so each one posts the IO thread's write.
  auto send_one = [&](std::uint64_t seq) {
    ASSERT_EQ(server->send(notification(), bytes_of(payload)), Connection::SendResult::kQueued);
    ASSERT_TRUE(eventually([&] { return server->written_seq() == seq; }));
  };
  for (std::uint64_t seq = 1; seq <= 10; ++seq) send_one(seq);  // the queue's buffers grow
  const std::size_t before = shard::testing::allocations();
  for (std::uint64_t seq = 11; seq <= 110; ++seq) send_one(seq);
  EXPECT_LT(shard::testing::allocations() - before, 10u) << "allocations for 100 sends, each posted";
  std::vector<std::uint8_t> wire(110 * (kPrefixBytes + payload.size()));
  asio::read(reader, asio::buffer(wire));
  FrameDecoder decoder;
  decoder.feed(wire);
  for (int i = 0; i < 110; ++i) {
    auto frame = decoder.next();
    ASSERT_TRUE(frame.has_value());
    EXPECT_EQ(std::string(frame->payload.begin(), frame->payload.end()), payload);
  }
}

TEST_F(LoopbackTest, ABatchTheKernelTakesOnlyPartOfArrivesWholeAndInOrder) {
  listen();
  auto reader = raw_client();  // reads only once everything is queued
  auto server = accepted();
  constexpr int kFrames = 16;
  std::vector<std::vector<std::uint8_t>> payloads;
  for (int i = 0; i < kFrames; ++i) payloads.push_back(testing::incompressible(512 << 10, 10 + i));
  // One batch of 8 MiB: the write made at once takes what the socket buffers
  // hold, Asio's async_write the rest.
  on_io_thread(context_, [&] {
    for (auto& p : payloads) ASSERT_EQ(server->send(notification(), p), Connection::SendResult::kQueued);
  });
  FrameDecoder decoder(testing::accept_all());
  int got = 0;
  while (got < kFrames) {
    auto room = decoder.prepare(64 << 10);
    decoder.commit(reader.read_some(asio::buffer(room.data(), room.size())));
    while (auto frame = decoder.next()) {
      ASSERT_LT(got, kFrames);
      EXPECT_TRUE(std::equal(frame->payload.begin(), frame->payload.end(), payloads[got].begin(), payloads[got].end()))
          << "frame " << got;
      ++got;
    }
  }
  ASSERT_TRUE(eventually([&] { return server->written_seq() == kFrames; }));
  EXPECT_EQ(server->stats().send_queued_bytes, 0u);
  EXPECT_FALSE(server->closed());
}

TEST_F(LoopbackTest, CompressedAndPlainFramesQueuedTogetherKeepTheirOrder) {
  config_.connection.decoder = testing::accept_all();
  listen();
  auto c = client();
  auto s = accepted();
  c->set_codec(Codec::kSnappy, codec_bit(Codec::kNone) | codec_bit(Codec::kSnappy));
  std::vector<std::vector<std::uint8_t>> payloads;
  std::size_t raw = 0;
  for (int i = 0; i < 9; ++i) {
    // small (plain), big compressible, big incompressible (sent plain), ...
    payloads.push_back(i % 3 == 0 ? std::vector<std::uint8_t>(10, static_cast<std::uint8_t>(i))
                       : i % 3 == 1 ? testing::compressible(100'000, i)
                                    : testing::incompressible(3'000, i));
    raw += payloads.back().size();
  }
  on_io_thread(context_, [&] {  // one batch
    for (auto& p : payloads) ASSERT_EQ(c->send(notification(), p), Connection::SendResult::kQueued);
  });
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    std::optional<Packet> p;
    ASSERT_TRUE(eventually([&] { return (p = s->try_receive()).has_value(); })) << "frame " << i;
    EXPECT_EQ(p->payload, payloads[i]) << "frame " << i;
  }
  EXPECT_LT(c->stats().bytes_out, raw * 3 / 4);  // the compressible ones travelled compressed
  EXPECT_EQ(c->stats().packets_out, payloads.size());
}

TEST_F(LoopbackTest, PlainReadsWithoutTheReadSetArriveInOrderToo) {
  config_.connection.poll_reads = false;  // each read through Asio's async_read_some
  listen();
  auto c = client();
  auto s = accepted();
  for (int i = 0; i < 100; ++i) ASSERT_EQ(c->send(notification(), bytes_of(std::to_string(i))), Connection::SendResult::kQueued);
  ASSERT_TRUE(eventually([&] { return s->stats().recv_queued == 100; }));
  for (int i = 0; i < 100; ++i) EXPECT_EQ(text_of(*s->try_receive()), std::to_string(i));
}

TEST(ReadSetTest, AnIoThreadWhoseConnectionsAllClosedRunsOutOfWork) {
  asio::io_context context;
  tcp::acceptor acceptor(context, {asio::ip::make_address("127.0.0.1"), 0});
  tcp::socket peer(context);
  peer.connect(acceptor.local_endpoint());
  auto c = Connection::create(acceptor.accept(), ConnectionConfig{});
  c->start();  // in the read set: the set's wait is the context's only work
  std::thread io([&] { context.run(); });
  FrameEncoder encoder;
  std::vector<std::uint8_t> frame;
  encoder.append(frame, notification(), bytes_of("in the set"));
  asio::write(peer, asio::buffer(frame));
  ASSERT_TRUE(eventually([&] { return c->stats().recv_queued == 1; }));  // read through the set
  c->close();
  c.reset();
  // Gone: shut down and out of the set (the peer stays open, so no end of
  // stream wakes the set by chance).
  ASSERT_TRUE(eventually([&] { return Connection::instances() == 0; }));
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!context.stopped() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  const bool ran_out = context.stopped();
  if (!ran_out) context.stop();  // fail, not hang
  io.join();
  peer.close();
  EXPECT_TRUE(ran_out) << "suspected hang: the empty read set still waits";
}

TEST_F(LoopbackTest, ANotificationRunsWhenAPacketArrivesAndCancelRunsItOnce) {
  listen();
  auto c = client();
  auto s = accepted();
  std::atomic<int> woken{0};
  s->notify_readable([&] { ++woken; });
  EXPECT_EQ(woken.load(), 0);
  c->send(notification(), bytes_of("x"));
  ASSERT_TRUE(eventually([&] { return woken.load() == 1; }));
  // Already readable: at once, on this thread.
  s->notify_readable([&] { ++woken; });
  EXPECT_EQ(woken.load(), 2);
  s->try_receive();
  const auto token = s->notify_readable([&] { ++woken; });
  s->cancel_notify(token);
  s->cancel_notify(token);
  EXPECT_EQ(woken.load(), 3);
}

TEST_F(LoopbackTest, NativeHandlersRunOnTheIoThreadAndThePacketIsNotQueued) {
  native_ = std::make_shared<NativeHandlers>();
  std::atomic<int> seen{0};
  native_->set(MessageKind::kMovement, [&](Connection& from, const Frame& frame) {
    ++seen;
    from.send(frame.header, frame.payload);  // echoes straight from the IO thread
  });
  listen();
  auto c = client();
  auto s = accepted();
  FrameHeader movement;
  movement.kind = MessageKind::kMovement;
  for (int i = 0; i < 100; ++i) c->send(movement, bytes_of("m" + std::to_string(i)));
  c->send(notification(), bytes_of("python's"));
  ASSERT_TRUE(eventually([&] { return c->stats().recv_queued == 100; }));
  EXPECT_EQ(seen.load(), 100);
  EXPECT_EQ(native_->handled(), 100u);
  EXPECT_EQ(s->stats().native_packets, 100u);
  ASSERT_TRUE(eventually([&] { return s->stats().recv_queued == 1; }));
  EXPECT_EQ(text_of(*s->try_receive()), "python's");
  EXPECT_EQ(text_of(*c->try_receive()), "m0");
}

TEST_F(LoopbackTest, GarbageClosesOnlyThatConnectionWithALoggedReason) {
  listen();
  auto good = client();
  auto good_server = accepted();
  auto bad = raw_client();
  auto bad_server = accepted();
  std::vector<std::uint8_t> garbage = frame_bytes("fine");
  garbage[4] = 0x77;  // the version byte
  asio::write(bad, asio::buffer(garbage));
  ASSERT_TRUE(eventually([&] { return bad_server->closed(); }));
  EXPECT_EQ(bad_server->close_reason(), CloseReason::kProtocolError);
  EXPECT_TRUE(logged("closed: protocol error")) << bad_server->close_detail();
  // The other connection goes on.
  good->send(notification(), bytes_of("still here"));
  std::optional<Packet> p;
  ASSERT_TRUE(eventually([&] { return (p = good_server->try_receive()).has_value(); }));
  EXPECT_EQ(text_of(*p), "still here");
  EXPECT_FALSE(good_server->closed());
}

TEST_F(LoopbackTest, AnOversizedLengthIsTooLargeBeforeTheBodyArrives) {
  config_.connection.decoder.limits.max_frame_bytes = 1024;
  listen();
  auto bad = raw_client();
  auto server = accepted();
  std::uint8_t length[4];
  store_u32le(length, 1u << 30);  // a gigabyte promised, never sent
  asio::write(bad, asio::buffer(length));
  ASSERT_TRUE(eventually([&] { return server->closed(); }));
  EXPECT_EQ(server->close_reason(), CloseReason::kTooLarge);
  EXPECT_TRUE(logged("too large"));
}

TEST_F(LoopbackTest, AStreamEndingInsideAFrameIsTruncatedAndOneEndingBetweenFramesIsPeerClosed) {
  listen();
  auto truncating = raw_client();
  auto truncated = accepted();
  auto polite = raw_client();
  auto closed = accepted();
  auto bytes = frame_bytes("half of me");
  asio::write(truncating, asio::buffer(bytes.data(), bytes.size() - 3));
  truncating.close();
  asio::write(polite, asio::buffer(bytes));
  polite.close();
  ASSERT_TRUE(eventually([&] { return truncated->closed() && closed->closed(); }));
  EXPECT_EQ(truncated->close_reason(), CloseReason::kProtocolError);
  EXPECT_NE(truncated->close_detail().find("truncated"), std::string::npos) << truncated->close_detail();
  EXPECT_EQ(closed->close_reason(), CloseReason::kPeerClosed);
  // What arrived before the end stays readable.
  auto p = closed->try_receive();
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(text_of(*p), "half of me");
}

TEST_F(LoopbackTest, ASlowDripFrameArrivesWholeAndAStalledOneTimesOut) {
  config_.connection.idle_timeout = 300ms;
  listen();
  auto drip = raw_client();
  auto server = accepted();
  auto bytes = frame_bytes("drip");
  for (std::uint8_t b : bytes) {
    asio::write(drip, asio::buffer(&b, 1));
    std::this_thread::sleep_for(10ms);  // each byte resets the idle clock
  }
  std::optional<Packet> p;
  ASSERT_TRUE(eventually([&] { return (p = server->try_receive()).has_value(); }));
  EXPECT_EQ(text_of(*p), "drip");
  asio::write(drip, asio::buffer(bytes.data(), 5));  // then it stalls mid-frame
  ASSERT_TRUE(eventually([&] { return server->closed(); }));
  EXPECT_EQ(server->close_reason(), CloseReason::kIdleTimeout);
  EXPECT_TRUE(logged("idle timeout"));
}

TEST_F(LoopbackTest, APeerThatNeverReadsIsCutOffInsteadOfGrowingMemory) {
  config_.connection.max_send_bytes = 1u << 20;
  listen();
  auto sleeper = raw_client();  // never reads
  auto server = accepted();
  std::vector<std::uint8_t> chunk(64 << 10, 7);
  Connection::SendResult result = Connection::SendResult::kQueued;
  std::size_t sent = 0;
  const auto end = std::chrono::steady_clock::now() + 10s;
  while (result == Connection::SendResult::kQueued && std::chrono::steady_clock::now() < end) {
    result = server->send(notification(), chunk);
    sent += chunk.size();
    if (sent % (4u << 20) == 0) std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(result, Connection::SendResult::kBackpressure);
  EXPECT_EQ(server->close_reason(), CloseReason::kBackpressure);
  EXPECT_TRUE(logged("peer does not read"));
  EXPECT_EQ(server->send(notification(), chunk), Connection::SendResult::kClosed);
}

TEST_F(LoopbackTest, APayloadOverTheLimitIsRefusedWithoutClosing) {
  config_.connection.encoder.limits.max_frame_bytes = 1024;
  listen();
  auto c = client();
  std::vector<std::uint8_t> big(2000);
  EXPECT_EQ(c->send(notification(), big), Connection::SendResult::kTooLarge);
  EXPECT_FALSE(c->closed());
}

TEST_F(LoopbackTest, TheListenerRefusesConnectionsOverThePerAddressLimit) {
  config_.max_per_address = 2;
  listen();
  auto a = raw_client();
  auto b = raw_client();
  auto sa = accepted();
  auto sb = accepted();
  auto c = raw_client();
  // The third is closed by the listener: its read sees the end.
  std::uint8_t byte;
  boost::system::error_code error;
  c.read_some(asio::buffer(&byte, 1), error);
  EXPECT_EQ(error, asio::error::eof);
  EXPECT_EQ(listener_->stats().refused_per_address, 1u);
  EXPECT_TRUE(logged("per-address limit"));
  // Once one closes, that address may connect again.
  a.close();
  ASSERT_TRUE(eventually([&] { return listener_->stats().open == 1; }));
  auto d = raw_client();
  EXPECT_NE(accepted(), nullptr);
}

TEST_F(LoopbackTest, ASendWithABadHeaderFieldIsRefusedAndTheConnectionGoesOn) {
  listen();
  auto c = client();
  auto s = accepted();
  FrameHeader bad_kind = notification(), bad_codec = notification(), bad_target = notification();
  bad_kind.kind = static_cast<MessageKind>(0);
  bad_codec.codec = static_cast<Codec>(3);
  bad_target.target_id = kMaxTargetId + 1;
  for (const FrameHeader& h : {bad_kind, bad_codec, bad_target}) EXPECT_EQ(c->send(h, bytes_of("x")), Connection::SendResult::kBadHeader);
  ASSERT_EQ(c->send(notification(), bytes_of("fine")), Connection::SendResult::kQueued);
  std::optional<Packet> p;
  ASSERT_TRUE(eventually([&] { return (p = s->try_receive()).has_value(); }));
  EXPECT_EQ(text_of(*p), "fine");
}

TEST_F(LoopbackTest, ReadingPausesWhileTheReceiveQueueIsFullAndResumes) {
  config_.connection.max_recv_packets = 10;
  listen();
  auto c = client();
  auto s = accepted();
  // One write per packet (each waits for the last), so no single read can
  // take them all: only the pause keeps the rest in the kernel.
  for (int i = 0; i < 100; ++i) {
    c->send(notification(), bytes_of(std::to_string(i)));
    ASSERT_TRUE(eventually([&] { return c->written_seq() == static_cast<std::uint64_t>(i + 1); }));
  }
  ASSERT_TRUE(eventually([&] { return s->stats().recv_queued >= 10; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_LT(s->stats().recv_queued, 50u);  // bounded by the reads that filled it
  for (int i = 0; i < 100; ++i) {
    std::optional<Packet> p;
    ASSERT_TRUE(eventually([&] { return (p = s->try_receive()).has_value(); })) << i;
    EXPECT_EQ(text_of(*p), std::to_string(i));
  }
}

TEST_F(LoopbackTest, ReadingPausesAtTheByteBoundToo) {
  config_.connection.max_recv_bytes = 1000;
  listen();
  auto c = client();
  auto s = accepted();
  std::vector<std::uint8_t> payload(100, 1);
  for (int i = 0; i < 100; ++i) {
    c->send(notification(), payload);
    ASSERT_TRUE(eventually([&] { return c->written_seq() == static_cast<std::uint64_t>(i + 1); }));
  }
  ASSERT_TRUE(eventually([&] { return s->stats().recv_queued >= 10; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_LT(s->stats().recv_queued, 50u);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(eventually([&] { return s->try_receive().has_value(); })) << i;
  }
}


TEST_F(LoopbackTest, AcceptedConnectionsGoToTheContextTheListenerPicks) {
  auto other = std::make_shared<asio::io_context>(1);
  auto guard = asio::make_work_guard(*other);
  std::thread other_thread([&] { other->run(); });
  std::atomic<int> picks{0};
  config_.connection_context = [&picks, other] {
    ++picks;
    return other;
  };
  listen();
  auto c = client();
  Listener::Accepted a;
  ASSERT_TRUE(eventually([&] { return (a = listener_->try_accept()).connection != nullptr; }));
  EXPECT_EQ(a.context, other);
  EXPECT_EQ(&a.connection->context(), other.get());
  EXPECT_GE(picks.load(), 1);
  // It reads and writes on that context's thread.
  c->send(notification(), bytes_of("ping"));
  std::optional<Packet> p;
  ASSERT_TRUE(eventually([&] { return (p = a.connection->try_receive()).has_value(); }));
  EXPECT_EQ(text_of(*p), "ping");
  a.connection->send(notification(), bytes_of("pong"));
  ASSERT_TRUE(eventually([&] { return (p = c->try_receive()).has_value(); }));
  EXPECT_EQ(text_of(*p), "pong");
  a.connection->close();
  listener_->close();
  guard.reset();
  other_thread.join();
}

TEST_F(LoopbackTest, AClosedListenerRefusesAtOnceEvenWhileItsIoThreadIsBusy) {
  listen();
  std::promise<void> release;
  std::shared_future<void> busy = release.get_future().share();
  asio::post(context_, [busy] { busy.wait(); });  // the IO thread closes nothing meanwhile
  listener_->close();
  tcp::socket socket(client_context_);
  boost::system::error_code error;
  socket.connect({asio::ip::make_address("127.0.0.1"), listener_->port()}, error);
  release.set_value();
  EXPECT_EQ(error, asio::error::connection_refused);
}

}  // namespace
}  // namespace shard::netproto
