#pragma once
// What a connection's handshake agreed (docs/protocol.md, "Handshake"): the
// codec and limits its encoder and decoder run with, and what the logs and
// Python show of it. Plain values, so connection.h needs no protobuf.

#include <cstdint>
#include <string>

#include "shard/netproto/codec_config.h"

namespace shard::netproto {

struct Negotiated {
  std::uint32_t version = 0;  // 0: no handshake ran (netproto's own framing tests)
  Codec codec = Codec::kNone;
  std::uint32_t compress_threshold = 0;
  Limits limits;
  std::uint32_t heartbeat_interval_ms = 0;
  std::string tls;                  // "TLSv1.3 TLS_AES_256_GCM_SHA384"; empty: plain TCP
  int peer_role = 0;                // wire::PeerRole of the other side
  std::uint32_t peer_node_id = 0;
};

}  // namespace shard::netproto
