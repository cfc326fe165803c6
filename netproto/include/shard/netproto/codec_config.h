#pragma once
// What a connection's encoder and decoder are configured with: hard limits (the
// same on both sides, so a well-behaved sender never produces what the receiver
// rejects), the negotiated codec, and when compression is worth trying.

#include <cstdint>

#include "shard/netproto/frame_header.h"

namespace shard::netproto {

struct Limits {
  // Upper bound of the length field: 12 header bytes + the payload as sent
  // (compressed or not). Checked before a byte of the frame body is waited for.
  std::uint32_t max_frame_bytes = 1u << 20;
  // Upper bound of a payload after decompression; a compressed frame declaring
  // more is rejected before anything is allocated or inflated (zip bombs).
  std::uint32_t max_decompressed_bytes = 4u << 20;
};

// A set of codecs as a bit mask (bit n = Codec value n).
inline constexpr std::uint8_t codec_bit(Codec c) noexcept {
  return static_cast<std::uint8_t>(1u << static_cast<unsigned>(c));
}

struct DecoderConfig {
  Limits limits;
  // Codecs accepted in incoming frames: before the handshake only kNone; after
  // it kNone plus the negotiated codec (small frames are always sent plain).
  std::uint8_t allowed_codecs = codec_bit(Codec::kNone);
  // The read buffer grows to hold the largest frame seen; once empty, a buffer
  // bigger than this is released so an idle connection holds little memory.
  // Likewise the decompression buffer, once its frame has been consumed.
  // Keep it at least the read size given to prepare(), or every read reallocates.
  std::uint32_t retain_buffer_bytes = 256u << 10;
};

struct EncoderConfig {
  Limits limits;
  Codec codec = Codec::kNone;  // the negotiated codec
  // Payloads below this are sent plain: compressing tiny payloads costs CPU and
  // rarely saves bytes. A compressed payload that is not smaller is sent plain too.
  std::uint32_t compress_threshold = 512;
  int zlib_level = 1;  // Z_BEST_SPEED: IO threads favour latency over ratio
};

}  // namespace shard::netproto
