#pragma once
// The handshake's decision: the connecting side offers (wire::Hello), the
// accepting side picks (wire::HelloReply) by its own policy. Pure functions, so
// every rule is tested without a socket.

#include <cstdint>
#include <vector>

#include "shard/netproto/codec_config.h"
#include "shard/wire/handshake.pb.h"

namespace shard::netproto {

inline constexpr std::uint32_t kProtocolVersion = 1;

struct ServerPolicy {
  std::uint32_t min_version = kProtocolVersion;
  std::uint32_t max_version = kProtocolVersion;
  std::vector<Codec> codecs{Codec::kSnappy, Codec::kZlib};  // the server's preference, first wins
  bool tls_supported = false;
  bool tls_required = false;  // refuse clients that cannot do TLS (no downgrade)
  std::uint32_t compress_threshold = 512;
  Limits limits;
  std::uint32_t heartbeat_interval_ms = 10'000;
  wire::PeerRole role = wire::ROLE_PROXY;
  std::uint32_t node_id = 0;
};

// The reply to `hello`: accepted with the highest common version, the first
// codec of the server's list the client offered (none without overlap), TLS when
// both support it, the server's limits with max_frame_bytes capped at the
// client's; not accepted, with a reason, when the versions do not overlap, one
// side requires TLS the other lacks, or the client's max_frame_bytes is below 12.
wire::HelloReply negotiate(const wire::Hello& hello, const ServerPolicy& policy);

// What both sides configure from an accepted reply. Throws ProtocolError
// (kBadPayload) for a refused reply or one with out-of-range values.
void check_reply(const wire::HelloReply& reply);
EncoderConfig encoder_config(const wire::HelloReply& reply);
DecoderConfig decoder_config(const wire::HelloReply& reply);

}  // namespace shard::netproto
