// Hostile compressed payloads: zip bombs, lying size declarations, corrupt and
// truncated streams. Hand-made frames, since our encoder never makes these.
#include <gtest/gtest.h>
#include <snappy.h>
#include <zlib.h>

#include <algorithm>
#include <functional>
#include <string>

#include "alloc_counter.h"
#include "shard/netproto/protocol_error.h"
#include "test_frames.h"

namespace shard::netproto {
namespace {

using testing::accept_all;

std::vector<std::uint8_t> frame_with(Codec codec, const std::vector<std::uint8_t>& raw_payload) {
  std::vector<std::uint8_t> wire(kPrefixBytes + raw_payload.size());
  FrameHeader h;
  h.codec = codec;
  write_prefix(wire.data(), h, static_cast<std::uint32_t>(raw_payload.size()));
  std::copy(raw_payload.begin(), raw_payload.end(), wire.begin() + kPrefixBytes);
  return wire;
}

// u32 LE declared size, then a zlib stream of `actual` zero bytes.
std::vector<std::uint8_t> zlib_payload(std::uint32_t declared, std::size_t actual) {
  std::vector<std::uint8_t> zeros(actual);
  uLongf n = compressBound(static_cast<uLong>(actual));
  std::vector<std::uint8_t> out(4 + n);
  store_u32le(out.data(), declared);
  EXPECT_EQ(compress2(out.data() + 4, &n, zeros.data(), static_cast<uLong>(actual), 9), Z_OK);
  out.resize(4 + n);
  return out;
}

std::vector<std::uint8_t> snappy_payload(const std::vector<std::uint8_t>& data) {
  std::string out;
  snappy::Compress(reinterpret_cast<const char*>(data.data()), data.size(), &out);
  return {out.begin(), out.end()};
}

ErrorCode decode_error(const DecoderConfig& c, const std::vector<std::uint8_t>& wire) {
  FrameDecoder d(c);
  try {
    d.feed(wire);
    while (d.next()) {
    }
  } catch (const ProtocolError& e) {
    return e.code();
  }
  return ErrorCode{};
}

DecoderConfig small_limits() {
  DecoderConfig c = accept_all();
  c.limits.max_frame_bytes = 1 << 20;
  c.limits.max_decompressed_bytes = 1 << 20;
  return c;
}

TEST(Compression, ZlibBombDeclaringHugeSizeIsRejectedBeforeAllocating) {
  const auto wire = frame_with(Codec::kZlib, zlib_payload(0xffffffff, 64 << 20));  // 64 MiB of zeros
  ASSERT_LT(wire.size(), 100'000u);
  shard::testing::reset_largest_allocation();
  EXPECT_EQ(decode_error(small_limits(), wire), ErrorCode::kDecompressedTooLarge);
  EXPECT_LT(shard::testing::largest_allocation(), 1u << 20);
}

TEST(Compression, ZlibBombLyingAboutItsSizeStopsAtTheDeclaredSize) {
  const auto wire = frame_with(Codec::kZlib, zlib_payload(1000, 64 << 20));
  shard::testing::reset_largest_allocation();
  EXPECT_EQ(decode_error(small_limits(), wire), ErrorCode::kDecompressedTooLarge);
  EXPECT_LT(shard::testing::largest_allocation(), 200'000u);
}

TEST(Compression, ZlibExactlyAtTheLimitIsAccepted) {
  DecoderConfig c = small_limits();
  EXPECT_EQ(decode_error(c, frame_with(Codec::kZlib, zlib_payload(1 << 20, 1 << 20))), ErrorCode{});
  EXPECT_EQ(decode_error(c, frame_with(Codec::kZlib, zlib_payload((1 << 20) + 1, (1 << 20) + 1))),
            ErrorCode::kDecompressedTooLarge);
}

TEST(Compression, ZlibShorterThanDeclaredTruncatedOrTrailingBytesFail) {
  const DecoderConfig c = small_limits();
  EXPECT_EQ(decode_error(c, frame_with(Codec::kZlib, zlib_payload(1000, 999))), ErrorCode::kDecompressFailed);
  auto truncated = zlib_payload(1000, 1000);
  truncated.resize(truncated.size() - 3);
  EXPECT_EQ(decode_error(c, frame_with(Codec::kZlib, truncated)), ErrorCode::kDecompressFailed);
  auto trailing = zlib_payload(1000, 1000);
  trailing.push_back(0);
  EXPECT_EQ(decode_error(c, frame_with(Codec::kZlib, trailing)), ErrorCode::kDecompressFailed);
  EXPECT_EQ(decode_error(c, frame_with(Codec::kZlib, {1, 0})), ErrorCode::kDecompressFailed);
  std::vector<std::uint8_t> corrupt = zlib_payload(1000, 1000);
  for (std::size_t i = 6; i < corrupt.size(); ++i) corrupt[i] ^= 0x5a;
  EXPECT_EQ(decode_error(c, frame_with(Codec::kZlib, corrupt)), ErrorCode::kDecompressFailed);
}

TEST(Compression, SnappyDeclaringMoreThanTheLimitIsRejectedBeforeAllocating) {
  // A snappy stream starts with its length as a varint: claim 2 GiB.
  const std::vector<std::uint8_t> claim{0x80, 0x80, 0x80, 0x80, 0x08, 0x00};
  shard::testing::reset_largest_allocation();
  EXPECT_EQ(decode_error(small_limits(), frame_with(Codec::kSnappy, claim)), ErrorCode::kDecompressedTooLarge);
  EXPECT_LT(shard::testing::largest_allocation(), 1u << 20);
  // A real stream just over the limit.
  const auto big = snappy_payload(std::vector<std::uint8_t>((1 << 20) + 1));
  EXPECT_EQ(decode_error(small_limits(), frame_with(Codec::kSnappy, big)), ErrorCode::kDecompressedTooLarge);
  const auto ok = snappy_payload(std::vector<std::uint8_t>(1 << 20));
  EXPECT_EQ(decode_error(small_limits(), frame_with(Codec::kSnappy, ok)), ErrorCode{});
}

TEST(Compression, CorruptSnappyFails) {
  const DecoderConfig c = small_limits();
  EXPECT_EQ(decode_error(c, frame_with(Codec::kSnappy, {})), ErrorCode::kDecompressFailed);
  EXPECT_EQ(decode_error(c, frame_with(Codec::kSnappy, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff})),
            ErrorCode::kDecompressFailed);
  auto p = snappy_payload(testing::compressible(5000));
  p.resize(p.size() / 2);
  EXPECT_EQ(decode_error(c, frame_with(Codec::kSnappy, p)), ErrorCode::kDecompressFailed);
  auto lying = snappy_payload(testing::compressible(5000));
  lying[0] ^= 1;  // the length preamble no longer matches the data
  EXPECT_EQ(decode_error(c, frame_with(Codec::kSnappy, lying)), ErrorCode::kDecompressFailed);
}

}  // namespace
}  // namespace shard::netproto
