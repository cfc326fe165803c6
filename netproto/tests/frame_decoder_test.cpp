// The incremental decoder against hostile and awkward input: every split of a
// stream, one byte at a time, truncation, oversized lengths (checked before any
// allocation), garbage, and no allocation per frame once warm.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <memory>

#include "shard/netproto/protocol_error.h"
#include "alloc_counter.h"
#include "test_frames.h"


namespace shard::netproto {
namespace {

using testing::accept_all;
using testing::compressible;
using testing::decode_all;

std::vector<std::uint8_t> stream_of(Codec codec, int frames) {
  EncoderConfig c;
  c.codec = codec;
  c.compress_threshold = 100;
  FrameEncoder encoder(c);
  std::vector<std::uint8_t> wire;
  for (int i = 0; i < frames; ++i) {
    FrameHeader h;
    h.kind = MessageKind::kRpcCall;
    h.target_id = static_cast<std::uint64_t>(i);
    encoder.append(wire, h, compressible(static_cast<std::size_t>(i * 70), i));
  }
  return wire;
}

// This process's resident memory, from /proc/self/statm.
std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t total_pages = 0, resident_pages = 0;
  statm >> total_pages >> resident_pages;
  return resident_pages * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

ErrorCode error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ProtocolError& e) {
    return e.code();
  }
  return ErrorCode{};
}

TEST(FrameDecoder, EveryTwoWaySplitOfAStreamGivesTheSameFrames) {
  for (Codec codec : {Codec::kNone, Codec::kSnappy, Codec::kZlib}) {
    const auto wire = stream_of(codec, 6);
    FrameDecoder whole(accept_all());
    const auto expected = decode_all(whole, wire);
    ASSERT_EQ(expected.size(), 6u);
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
      FrameDecoder d(accept_all());
      std::vector<std::uint8_t> got_payloads;
      std::size_t count = 0;
      for (auto part : {std::span(wire).first(cut), std::span(wire).subspan(cut)}) {
        d.feed(part);
        while (auto f = d.next()) {
          ASSERT_EQ(f->header, expected[count].header);
          ASSERT_TRUE(std::equal(f->payload.begin(), f->payload.end(), expected[count].payload.begin(),
                                 expected[count].payload.end()));
          ++count;
        }
      }
      d.finish();
      ASSERT_EQ(count, expected.size()) << "cut at " << cut;
    }
  }
}

TEST(FrameDecoder, SlowDripOneByteAtATimeAndOddChunks) {
  const auto wire = stream_of(Codec::kZlib, 10);
  FrameDecoder whole(accept_all());
  const auto expected = decode_all(whole, wire);
  for (std::size_t chunk : {1u, 2u, 3u, 7u, 15u, 16u, 17u, 4096u}) {
    FrameDecoder d(accept_all());
    const auto got = decode_all(d, wire, chunk);
    ASSERT_EQ(got.size(), expected.size()) << "chunk " << chunk;
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].payload, expected[i].payload);
  }
}

TEST(FrameDecoder, ZeroCopyPrepareCommitReadsInPlace) {
  const auto wire = stream_of(Codec::kNone, 3);
  FrameDecoder d;
  std::size_t at = 0, frames = 0;
  while (at < wire.size()) {
    const std::size_t n = std::min<std::size_t>(5, wire.size() - at);
    auto dst = d.prepare(64);  // a read may deliver less than it asked for
    std::copy_n(wire.begin() + static_cast<std::ptrdiff_t>(at), n, dst.begin());
    d.commit(n);
    at += n;
    while (d.next()) ++frames;
  }
  EXPECT_EQ(frames, 3u);
}

TEST(FrameDecoder, TruncatedAtCloseIsAnError) {
  const auto wire = stream_of(Codec::kNone, 2);
  // The first frame is a bare 16-byte prefix (empty payload); cut inside the second.
  for (std::size_t cut : {std::size_t{1}, std::size_t{4}, kPrefixBytes + 1, 2 * kPrefixBytes, wire.size() - 1}) {
    FrameDecoder d;
    EXPECT_EQ(error_of([&] { decode_all(d, {wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(cut)}); }),
              ErrorCode::kTruncated)
        << "cut " << cut;
  }
  FrameDecoder d;
  decode_all(d, wire);  // complete: finish() is quiet
}

TEST(FrameDecoder, OversizedLengthIsRejectedBeforeAnyAllocation) {
  DecoderConfig c;
  c.limits.max_frame_bytes = 1000;
  for (std::uint32_t length : {1001u, 0x7fffffffu, 0xffffffffu}) {
    FrameDecoder d(c);
    d.prepare(64);  // the read buffer exists before the bytes arrive
    std::uint8_t bytes[4];
    store_u32le(bytes, length);
    shard::testing::reset_largest_allocation();
    EXPECT_EQ(error_of([&] { d.feed(bytes); }), ErrorCode::kOversized);
    EXPECT_LT(shard::testing::largest_allocation(), 1000u) << "allocated for a lying length " << length;
    EXPECT_TRUE(d.failed());
  }
  // Exactly at the limit is fine.
  FrameDecoder d(c);
  std::uint8_t bytes[4];
  store_u32le(bytes, 1000);
  d.feed(bytes);
  EXPECT_FALSE(d.next());
}

TEST(FrameDecoder, OversizedLengthBehindACompleteFrameIsRejectedWhenReached) {
  DecoderConfig c;
  c.limits.max_frame_bytes = 1000;
  auto wire = stream_of(Codec::kNone, 2);
  std::uint8_t bad[4];
  store_u32le(bad, 5000);
  wire.insert(wire.end(), bad, bad + 4);
  FrameDecoder d(c);
  d.feed(wire);
  EXPECT_TRUE(d.next());
  EXPECT_TRUE(d.next());
  EXPECT_EQ(error_of([&] { d.next(); }), ErrorCode::kOversized);
}

TEST(FrameDecoder, LengthShorterThanTheHeaderIsRejected) {
  FrameDecoder d;
  std::uint8_t bytes[4];
  store_u32le(bytes, kHeaderBytes - 1);
  EXPECT_EQ(error_of([&] { d.feed(bytes); }), ErrorCode::kBadHeader);
}

TEST(FrameDecoder, GarbageFailsTypedAndStaysFailed) {
  std::vector<std::uint8_t> garbage(200);
  for (std::size_t i = 0; i < garbage.size(); ++i) garbage[i] = static_cast<std::uint8_t>(i * 37 + 11);
  store_u32le(garbage.data(), 100);  // a plausible length, then nonsense
  FrameDecoder d;
  d.feed(garbage);
  const ErrorCode first = error_of([&] { d.next(); });
  EXPECT_NE(first, ErrorCode{});
  EXPECT_EQ(error_of([&] { d.next(); }), ErrorCode::kDecoderFailed);
  EXPECT_EQ(error_of([&] { d.feed(garbage); }), ErrorCode::kDecoderFailed);

  // An HTTP request on the game port: "GET " is a 542 MB length.
  const std::string http = "GET / HTTP/1.1\r\n\r\n";
  FrameDecoder h;
  EXPECT_EQ(error_of([&] { h.feed({reinterpret_cast<const std::uint8_t*>(http.data()), http.size()}); }),
            ErrorCode::kOversized);
}

TEST(FrameDecoder, CompressedFrameInACodecNotNegotiatedIsRejected) {
  const auto wire = stream_of(Codec::kSnappy, 3);
  DecoderConfig c;
  c.allowed_codecs = codec_bit(Codec::kNone) | codec_bit(Codec::kZlib);
  FrameDecoder d(c);
  EXPECT_EQ(error_of([&] { decode_all(d, wire); }), ErrorCode::kCodecNotAllowed);
  FrameDecoder ok(accept_all());
  EXPECT_EQ(decode_all(ok, wire).size(), 3u);
}

TEST(FrameDecoder, SteadyStateAllocatesNothingPerFrame) {
  for (Codec codec : {Codec::kNone, Codec::kSnappy, Codec::kZlib}) {
    const auto wire = stream_of(codec, 20);
    FrameDecoder d(accept_all());
    decode_all(d, wire, 512);  // warm up: buffers reach their size
    const std::size_t before = shard::testing::allocations();
    std::size_t frames = 0;
    for (int round = 0; round < 10; ++round) {
      for (std::size_t at = 0; at < wire.size(); at += 512) {
        d.feed({wire.data() + at, std::min<std::size_t>(512, wire.size() - at)});
        while (d.next()) ++frames;
      }
    }
    EXPECT_EQ(frames, 200u);
    EXPECT_EQ(shard::testing::allocations() - before, 0u) << "codec " << static_cast<int>(codec);
  }
}

// A connection prepares its read size (64 KiB) for every read, and an idle
// client's decoder keeps that buffer: only the pages a read wrote may become
// resident, or each client of a proxy costs 64 KiB for nothing.
TEST(FrameDecoder, ALargePreparedReadBufferCostsOnlyThePagesWritten) {
  constexpr std::size_t kDecoders = 512, kReadSize = 64 << 10;
  const std::vector<std::uint8_t> wire = stream_of(Codec::kNone, 1);
  std::vector<std::unique_ptr<FrameDecoder>> decoders;
  decoders.reserve(kDecoders);
  const std::size_t before = resident_bytes();
  for (std::size_t i = 0; i < kDecoders; ++i) {
    auto& d = decoders.emplace_back(std::make_unique<FrameDecoder>());
    std::span<std::uint8_t> room = d->prepare(kReadSize);
    std::memcpy(room.data(), wire.data(), wire.size());
    d->commit(wire.size());
    ASSERT_TRUE(d->next());
    ASSERT_FALSE(d->next());
    ASSERT_GE(d->capacity(), kReadSize);  // kept for the next read
  }
  const std::size_t grown = resident_bytes() - std::min(before, resident_bytes());
  // Zero-filled buffers: 512 x 64 KiB = 32 MiB. Untouched pages: a page or two
  // per decoder (more under ASan: its fill of the first 4 KiB and the shadow).
  EXPECT_LT(grown, std::size_t{16} << 20) << "resident memory grew by " << (grown >> 10) << " KiB for "
                                           << kDecoders << " decoders";
}

TEST(FrameDecoder, BigBufferIsReleasedOnceDrained) {
  DecoderConfig c;
  c.retain_buffer_bytes = 64 << 10;
  FrameEncoder e;
  std::vector<std::uint8_t> wire;
  e.append(wire, {}, compressible(500'000));
  FrameDecoder d(c);
  d.feed(wire);
  ASSERT_TRUE(d.next());
  EXPECT_GE(d.capacity(), 500'000u);
  EXPECT_FALSE(d.next());
  EXPECT_EQ(d.capacity(), 0u);
}

TEST(FrameDecoder, BigDecompressionBufferIsReleasedAfterItsFrame) {
  DecoderConfig c = accept_all();
  c.retain_buffer_bytes = 64 << 10;
  EncoderConfig ec;
  ec.codec = Codec::kZlib;
  FrameEncoder e(ec);
  std::vector<std::uint8_t> wire;
  e.append(wire, {}, std::vector<std::uint8_t>(2'000'000));  // ~2 KB on the wire
  e.append(wire, {}, compressible(1000));
  FrameDecoder d(c);
  d.feed(wire);
  ASSERT_EQ(d.next()->payload.size(), 2'000'000u);
  EXPECT_GE(d.capacity(), 2'000'000u);
  ASSERT_EQ(d.next()->payload.size(), 1000u);
  EXPECT_LT(d.capacity(), 64u << 10);
}

}  // namespace
}  // namespace shard::netproto
