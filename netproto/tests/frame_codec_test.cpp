// Encoder -> decoder round trips: every flag combination, every codec, payload
// sizes around the compression threshold, many frames batched in one buffer.
#include <gtest/gtest.h>

#include "shard/netproto/protocol_error.h"
#include "test_frames.h"

namespace shard::netproto {
namespace {

using testing::accept_all;
using testing::compressible;
using testing::decode_all;
using testing::incompressible;

EncoderConfig with_codec(Codec codec, std::uint32_t threshold = 64) {
  EncoderConfig c;
  c.codec = codec;
  c.compress_threshold = threshold;
  return c;
}

TEST(FrameCodec, RoundTripsEveryFlagCombinationAndCodec) {
  const std::size_t kSizes[] = {0, 30, 400};  // empty, below the threshold, compressible
  for (Codec codec : {Codec::kNone, Codec::kSnappy, Codec::kZlib}) {
    FrameEncoder encoder(with_codec(codec));
    std::vector<std::uint8_t> wire;
    std::vector<FrameHeader> sent;
    std::vector<std::vector<std::uint8_t>> payloads;
    int i = 0;
    for (int kind = 1; kind <= kMaxMessageKind; ++kind) {
      for (int prio = 0; prio < 4; ++prio) {
        for (int native = 0; native < 2; ++native) {
          for (int dest = 0; dest <= kMaxDestKind; ++dest) {
            FrameHeader h;
            h.kind = static_cast<MessageKind>(kind);
            h.priority = static_cast<Priority>(prio);
            h.native = native != 0;
            h.dest_kind = static_cast<DestKind>(dest);
            h.dest_node = static_cast<std::uint16_t>(i * 31);
            h.target_id = (std::uint64_t{1} << 47) + static_cast<std::uint64_t>(i);
            // Alternate empty, below-threshold and compressible payloads.
            auto p = compressible(kSizes[i % 3], i);
            encoder.append(wire, h, p);
            sent.push_back(h);
            payloads.push_back(p);
            ++i;
          }
        }
      }
    }
    FrameDecoder decoder(accept_all());
    auto got = decode_all(decoder, wire);
    ASSERT_EQ(got.size(), sent.size());
    for (std::size_t k = 0; k < got.size(); ++k) {
      FrameHeader expect = sent[k];
      expect.codec = (codec != Codec::kNone && payloads[k].size() >= 64) ? codec : Codec::kNone;
      EXPECT_EQ(got[k].header, expect) << "frame " << k;
      EXPECT_EQ(got[k].payload, payloads[k]) << "frame " << k;
    }
  }
}

TEST(FrameCodec, BelowThresholdGoesPlainAtThresholdCompresses) {
  FrameEncoder encoder(with_codec(Codec::kSnappy, 512));
  std::vector<std::uint8_t> wire;
  encoder.append(wire, {}, compressible(511));
  encoder.append(wire, {}, compressible(512));
  FrameDecoder decoder(accept_all());
  auto got = decode_all(decoder, wire);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].header.codec, Codec::kNone);
  EXPECT_EQ(got[1].header.codec, Codec::kSnappy);
  EXPECT_LT(wire.size(), 2 * kPrefixBytes + 511 + 512);
}

TEST(FrameCodec, IncompressiblePayloadIsSentPlain) {
  for (Codec codec : {Codec::kSnappy, Codec::kZlib}) {
    FrameEncoder encoder(with_codec(codec));
    std::vector<std::uint8_t> wire;
    const auto p = incompressible(16384);
    encoder.append(wire, {}, p);
    EXPECT_EQ(wire.size(), kPrefixBytes + p.size());
    FrameDecoder decoder(accept_all());
    auto got = decode_all(decoder, wire);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].header.codec, Codec::kNone);
    EXPECT_EQ(got[0].payload, p);
  }
}

TEST(FrameCodec, LargeCompressiblePayloadRoundTripsCompressed) {
  for (Codec codec : {Codec::kSnappy, Codec::kZlib}) {
    FrameEncoder encoder(with_codec(codec));
    std::vector<std::uint8_t> wire;
    const auto p = compressible(1 << 20);
    encoder.append(wire, {}, p);
    EXPECT_LT(wire.size(), p.size() * 3 / 4);
    FrameDecoder decoder(accept_all());
    auto got = decode_all(decoder, wire, 1000);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].header.codec, codec);
    EXPECT_EQ(got[0].payload, p);
  }
}

TEST(FrameCodec, EncoderRefusesPayloadsThePeerWouldRejectAndLeavesOutputAlone) {
  EncoderConfig config = with_codec(Codec::kNone);
  config.limits.max_frame_bytes = 1000;
  FrameEncoder encoder(config);
  std::vector<std::uint8_t> wire{1, 2, 3};
  EXPECT_THROW(encoder.append(wire, {}, compressible(1000 - kHeaderBytes + 1)), ProtocolError);
  EXPECT_EQ(wire, (std::vector<std::uint8_t>{1, 2, 3}));
  encoder.append(wire, {}, compressible(1000 - kHeaderBytes));  // exactly at the limit
  EXPECT_EQ(wire.size(), 3 + kLengthBytes + 1000);

  // With a codec, a payload that compresses under the frame limit may go, up to
  // the decompressed limit.
  config.codec = Codec::kZlib;
  config.limits.max_decompressed_bytes = 5000;
  FrameEncoder zenc(config);
  std::vector<std::uint8_t> zwire;
  const std::vector<std::uint8_t> zeros(5000);
  zenc.append(zwire, {}, zeros);
  EXPECT_THROW(zenc.append(zwire, {}, std::vector<std::uint8_t>(5001)), ProtocolError);
  FrameDecoder decoder([&] { auto c = accept_all(); c.limits = config.limits; return c; }());
  EXPECT_EQ(decode_all(decoder, zwire).at(0).payload, zeros);
}

}  // namespace
}  // namespace shard::netproto
