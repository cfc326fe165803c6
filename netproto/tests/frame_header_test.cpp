// The 16-byte prefix, byte by byte, as docs/protocol.md draws it.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>

#include "shard/netproto/frame_header.h"
#include "shard/netproto/protocol_error.h"

namespace shard::netproto {
namespace {

FrameHeader sample() {
  FrameHeader h;
  h.kind = MessageKind::kMovement;
  h.codec = Codec::kZlib;
  h.native = true;
  h.priority = Priority::kHigh;
  h.dest_kind = DestKind::kEntity;
  h.dest_node = 0x1234;
  h.target_id = 0x0000AABBCCDDEEFFull;
  return h;
}

TEST(FrameHeader, LayoutIsLittleEndianByteByByte) {
  std::array<std::uint8_t, kPrefixBytes> b{};
  write_prefix(b.data(), sample(), 0x0102);
  const std::array<std::uint8_t, kPrefixBytes> expected{
      0x0E, 0x01, 0x00, 0x00,              // length = 12 + 0x0102
      0x01,                                // version
      0x0A,                                // kind: movement
      0x02 | 0x04 | (2 << 3),              // zlib, native, priority high
      0x04,                                // destination kind: entity
      0x34, 0x12,                          // destination node
      0xFF, 0xEE, 0xDD, 0xCC, 0xBB, 0xAA,  // target id, 48 bits
  };
  EXPECT_EQ(b, expected);
}

TEST(FrameHeader, ParseInvertsWriteForEveryFlagCombination) {
  for (int codec = 0; codec < 3; ++codec) {
    for (int native = 0; native < 2; ++native) {
      for (int prio = 0; prio < 4; ++prio) {
        for (int dest = 0; dest <= kMaxDestKind; ++dest) {
          FrameHeader h = sample();
          h.codec = static_cast<Codec>(codec);
          h.native = native != 0;
          h.priority = static_cast<Priority>(prio);
          h.dest_kind = static_cast<DestKind>(dest);
          h.target_id = kMaxTargetId;
          std::array<std::uint8_t, kPrefixBytes> b{};
          write_prefix(b.data(), h, 7);
          EXPECT_EQ(parse_header(b.data() + kLengthBytes), h);
        }
      }
    }
  }
}

ErrorCode parse_error(std::array<std::uint8_t, kPrefixBytes> b) {
  try {
    parse_header(b.data() + kLengthBytes);
  } catch (const ProtocolError& e) {
    return e.code();
  }
  return ErrorCode{};
}

TEST(FrameHeader, RejectsBadVersionKindFlagsAndDestination) {
  std::array<std::uint8_t, kPrefixBytes> good{};
  write_prefix(good.data(), sample(), 0);
  auto with = [&](std::size_t at, std::uint8_t v) { auto b = good; b[at] = v; return b; };
  EXPECT_EQ(parse_error(with(4, 2)), ErrorCode::kBadVersion);
  EXPECT_EQ(parse_error(with(4, 0)), ErrorCode::kBadVersion);
  EXPECT_EQ(parse_error(with(5, 0)), ErrorCode::kBadHeader);
  EXPECT_EQ(parse_error(with(5, kMaxMessageKind + 1)), ErrorCode::kBadHeader);
  EXPECT_EQ(parse_error(with(6, 0x03)), ErrorCode::kBadFlags);  // codec 3 does not exist
  EXPECT_EQ(parse_error(with(6, 0x20)), ErrorCode::kBadFlags);  // reserved bits
  EXPECT_EQ(parse_error(with(6, 0x80)), ErrorCode::kBadFlags);
  EXPECT_EQ(parse_error(with(7, kMaxDestKind + 1)), ErrorCode::kBadHeader);
  EXPECT_EQ(parse_error(with(7, 0x10)), ErrorCode::kBadHeader);
  EXPECT_EQ(parse_error(good), ErrorCode{});
}

TEST(FrameHeader, WriteRejectsTargetIdOver48Bits) {
  FrameHeader h = sample();
  h.target_id = kMaxTargetId + 1;
  std::array<std::uint8_t, kPrefixBytes> b{};
  EXPECT_THROW(write_prefix(b.data(), h, 0), ProtocolError);
}

TEST(FrameHeader, RewriteDestinationChangesOnlyTheDestinationFields) {
  std::array<std::uint8_t, kPrefixBytes + 3> b{};
  write_prefix(b.data(), sample(), 3);
  b[16] = 'a', b[17] = 'b', b[18] = 'c';
  auto before = b;
  rewrite_destination(b.data(), DestKind::kClient, 0xBEEF, 0x010203040506ull);
  FrameHeader expected = sample();
  expected.dest_kind = DestKind::kClient;
  expected.dest_node = 0xBEEF;
  expected.target_id = 0x010203040506ull;
  EXPECT_EQ(parse_header(b.data() + kLengthBytes), expected);
  EXPECT_TRUE(std::equal(b.begin(), b.begin() + 7, before.begin()));  // length, version, kind, flags
  EXPECT_TRUE(std::equal(b.begin() + 16, b.end(), before.begin() + 16));  // payload
  EXPECT_THROW(rewrite_destination(b.data(), DestKind::kClient, 0, kMaxTargetId + 1), ProtocolError);
}

}  // namespace
}  // namespace shard::netproto
