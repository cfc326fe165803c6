#pragma once
// Helpers shared by the netproto tests: payload makers and a whole-buffer decode.

#include <cstdint>
#include <random>
#include <vector>

#include "shard/netproto/frame_decoder.h"
#include "shard/netproto/frame_encoder.h"

namespace shard::netproto::testing {

// Text-like bytes that compress well (snappy and zlib both shrink them).
inline std::vector<std::uint8_t> compressible(std::size_t n, unsigned seed = 1) {
  std::vector<std::uint8_t> v(n);
  std::mt19937 rng(seed);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>('a' + (rng() % 4));
  return v;
}

// Random bytes: no codec shrinks them.
inline std::vector<std::uint8_t> incompressible(std::size_t n, unsigned seed = 2) {
  std::vector<std::uint8_t> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<std::uint8_t>(rng());
  return v;
}

struct OwnedFrame {
  FrameHeader header;
  std::vector<std::uint8_t> payload;
};

// Decodes every frame in `bytes` fed in chunks of `chunk` bytes (0 = at once).
inline std::vector<OwnedFrame> decode_all(FrameDecoder& decoder, const std::vector<std::uint8_t>& bytes,
                                          std::size_t chunk = 0) {
  std::vector<OwnedFrame> frames;
  if (chunk == 0) chunk = bytes.size() ? bytes.size() : 1;
  for (std::size_t at = 0; at < bytes.size(); at += chunk) {
    const std::size_t n = std::min(chunk, bytes.size() - at);
    decoder.feed({bytes.data() + at, n});
    while (auto f = decoder.next()) frames.push_back({f->header, {f->payload.begin(), f->payload.end()}});
  }
  decoder.finish();
  return frames;
}

inline DecoderConfig accept_all() {
  DecoderConfig c;
  c.allowed_codecs = codec_bit(Codec::kNone) | codec_bit(Codec::kSnappy) | codec_bit(Codec::kZlib);
  return c;
}

}  // namespace shard::netproto::testing
