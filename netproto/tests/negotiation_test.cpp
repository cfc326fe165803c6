// The handshake's decision: client offers, server picks.
#include <gtest/gtest.h>

#include "shard/netproto/negotiation.h"
#include "shard/netproto/protocol_error.h"

namespace shard::netproto {
namespace {

wire::Hello offer(std::initializer_list<wire::Compression> codecs, bool tls = false) {
  wire::Hello h;
  h.set_min_version(1);
  h.set_max_version(3);
  for (auto c : codecs) h.add_compression(c);
  h.set_tls_supported(tls);
  return h;
}

TEST(Negotiation, ServerPreferenceWinsAmongOfferedCodecs) {
  ServerPolicy p;
  p.codecs = {Codec::kZlib, Codec::kSnappy};
  EXPECT_EQ(negotiate(offer({wire::COMPRESSION_SNAPPY, wire::COMPRESSION_ZLIB}), p).compression(),
            wire::COMPRESSION_ZLIB);
  EXPECT_EQ(negotiate(offer({wire::COMPRESSION_SNAPPY}), p).compression(), wire::COMPRESSION_SNAPPY);
  EXPECT_EQ(negotiate(offer({}), p).compression(), wire::COMPRESSION_NONE);
  p.codecs = {};
  EXPECT_EQ(negotiate(offer({wire::COMPRESSION_SNAPPY}), p).compression(), wire::COMPRESSION_NONE);
}

TEST(Negotiation, HighestCommonVersionOrRefusal) {
  ServerPolicy p;
  p.min_version = 1;
  p.max_version = 2;
  auto r = negotiate(offer({}), p);
  EXPECT_TRUE(r.accepted());
  EXPECT_EQ(r.version(), 2u);
  p.min_version = p.max_version = 4;
  r = negotiate(offer({}), p);
  EXPECT_FALSE(r.accepted());
  EXPECT_NE(r.reason().find("version"), std::string::npos);
}

TEST(Negotiation, TlsWhenBothCanAndRefusedWhenRequiredButMissing) {
  ServerPolicy p;
  EXPECT_FALSE(negotiate(offer({}, true), p).tls());
  p.tls_supported = true;
  EXPECT_TRUE(negotiate(offer({}, true), p).tls());
  EXPECT_FALSE(negotiate(offer({}, false), p).tls());
  p.tls_required = true;
  EXPECT_FALSE(negotiate(offer({}, false), p).accepted());
  auto hello = offer({}, false);
  hello.set_tls_required(true);
  p = {};
  EXPECT_FALSE(negotiate(hello, p).accepted());
}

TEST(Negotiation, ConfigsFollowTheReplyAndHostileRepliesAreRejected) {
  ServerPolicy p;
  p.limits.max_frame_bytes = 5000;
  auto reply = negotiate(offer({wire::COMPRESSION_ZLIB}), p);
  EXPECT_EQ(encoder_config(reply).codec, Codec::kZlib);
  EXPECT_EQ(encoder_config(reply).limits.max_frame_bytes, 5000u);
  EXPECT_EQ(decoder_config(reply).allowed_codecs, codec_bit(Codec::kNone) | codec_bit(Codec::kZlib));
  reply.set_compression(static_cast<wire::Compression>(7));
  EXPECT_THROW(decoder_config(reply), ProtocolError);
  reply.set_compression(wire::COMPRESSION_NONE);
  reply.set_max_frame_bytes(3);
  EXPECT_THROW(encoder_config(reply), ProtocolError);
  reply.set_max_frame_bytes(5000);
  reply.set_accepted(false);
  EXPECT_THROW(encoder_config(reply), ProtocolError);
}

TEST(Negotiation, TheFrameLimitIsTheSmallerOfBothSidesAndATinyOneIsRefused) {
  ServerPolicy p;
  p.limits.max_frame_bytes = 5000;
  auto hello = offer({});
  EXPECT_EQ(negotiate(hello, p).max_frame_bytes(), 5000u);  // not stated
  hello.set_max_frame_bytes(2000);
  EXPECT_EQ(negotiate(hello, p).max_frame_bytes(), 2000u);
  hello.set_max_frame_bytes(9000);
  EXPECT_EQ(negotiate(hello, p).max_frame_bytes(), 5000u);
  hello.set_max_frame_bytes(11);
  const auto reply = negotiate(hello, p);
  EXPECT_FALSE(reply.accepted());
  EXPECT_EQ(reply.reason(), "max_frame_bytes 11 below the 12-byte header");
}

}  // namespace
}  // namespace shard::netproto
