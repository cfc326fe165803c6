#include "shard/netproto/negotiation.h"

#include <algorithm>
#include <string>

#include "shard/netproto/protocol_error.h"

namespace shard::netproto {
namespace {

wire::HelloReply refuse(const std::string& reason) {
  wire::HelloReply reply;
  reply.set_accepted(false);
  reply.set_reason(reason);
  return reply;
}

bool offered(const wire::Hello& hello, Codec codec) {
  const auto& c = hello.compression();
  return std::find(c.begin(), c.end(), static_cast<int>(codec)) != c.end();
}

}  // namespace

wire::HelloReply negotiate(const wire::Hello& hello, const ServerPolicy& policy) {
  const std::uint32_t version = std::min(hello.max_version(), policy.max_version);
  if (version < std::max(hello.min_version(), policy.min_version)) {
    return refuse("no common protocol version: client " + std::to_string(hello.min_version()) + "-" +
                  std::to_string(hello.max_version()) + ", server " + std::to_string(policy.min_version) +
                  "-" + std::to_string(policy.max_version));
  }
  if (hello.tls_required() && !policy.tls_supported) return refuse("client requires TLS, server has none");
  if (policy.tls_required && !hello.tls_supported()) return refuse("server requires TLS");
  if (hello.max_frame_bytes() != 0 && hello.max_frame_bytes() < kHeaderBytes) {
    return refuse("max_frame_bytes " + std::to_string(hello.max_frame_bytes()) + " below the 12-byte header");
  }

  wire::HelloReply reply;
  reply.set_accepted(true);
  reply.set_version(version);
  reply.set_compression(wire::COMPRESSION_NONE);
  for (Codec codec : policy.codecs) {
    if (codec != Codec::kNone && offered(hello, codec)) {
      reply.set_compression(static_cast<wire::Compression>(codec));
      break;
    }
  }
  reply.set_tls(policy.tls_supported && hello.tls_supported());
  reply.set_compress_threshold(policy.compress_threshold);
  // Neither side may send what the other's limit rejects: the smaller wins.
  reply.set_max_frame_bytes(hello.max_frame_bytes() == 0
                                ? policy.limits.max_frame_bytes
                                : std::min(hello.max_frame_bytes(), policy.limits.max_frame_bytes));
  reply.set_max_decompressed_bytes(policy.limits.max_decompressed_bytes);
  reply.set_heartbeat_interval_ms(policy.heartbeat_interval_ms);
  reply.set_role(policy.role);
  reply.set_node_id(policy.node_id);
  return reply;
}

// The reply came off the network too: its numbers are checked before use.
void check_reply(const wire::HelloReply& reply) {
  if (!reply.accepted()) throw ProtocolError(ErrorCode::kBadPayload, "handshake refused: " + reply.reason());
  if (reply.compression() < 0 || reply.compression() > static_cast<int>(Codec::kZlib)) {
    throw ProtocolError(ErrorCode::kBadPayload, "unknown compression " + std::to_string(reply.compression()));
  }
  if (reply.max_frame_bytes() < kHeaderBytes) {
    throw ProtocolError(ErrorCode::kBadPayload, "max_frame_bytes " + std::to_string(reply.max_frame_bytes()));
  }
}

EncoderConfig encoder_config(const wire::HelloReply& reply) {
  check_reply(reply);
  EncoderConfig config;
  config.limits = {reply.max_frame_bytes(), reply.max_decompressed_bytes()};
  config.codec = static_cast<Codec>(reply.compression());
  config.compress_threshold = reply.compress_threshold();
  return config;
}

DecoderConfig decoder_config(const wire::HelloReply& reply) {
  check_reply(reply);
  DecoderConfig config;
  config.limits = {reply.max_frame_bytes(), reply.max_decompressed_bytes()};
  config.allowed_codecs = static_cast<std::uint8_t>(codec_bit(Codec::kNone) |
                                                    codec_bit(static_cast<Codec>(reply.compression())));
  return config;
}

}  // namespace shard::netproto
