#pragma once
// Per-frame payload compression, private to the codec. Each frame is compressed
// on its own (no shared dictionary across frames), so a frame can be routed,
// dropped or reordered by priority without breaking the stream.
//
// Compressed payload formats (docs/protocol.md):
//   snappy: the raw snappy format, which starts with the uncompressed length (varint)
//   zlib:   u32 LE uncompressed length, then an RFC 1950 zlib stream
// Both declare their size first, so the receiver checks it against its limit
// before it allocates or inflates anything.

#include <cstdint>
#include <span>
#include <vector>

#include "shard/netproto/frame_header.h"
#include "zlib_stream.h"

namespace shard::netproto {

class Compressor final {
 public:
  explicit Compressor(int zlib_level) : deflate_(zlib_level) {}

  // Appends the compressed form of `in` to `out`; returns its size in bytes.
  std::size_t compress(Codec codec, std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out);

 private:
  ZDeflate deflate_;
};

class Decompressor final {
 public:
  explicit Decompressor(std::uint32_t max_out) : max_out_(max_out) {}

  // Decompresses into an internal buffer reused from frame to frame; the view is
  // valid until the next call. Throws ProtocolError (kDecompressFailed,
  // kDecompressedTooLarge).
  std::span<const std::uint8_t> decompress(Codec codec, std::span<const std::uint8_t> in);

  // Releases the output buffer if it is bigger than `keep` bytes: one huge frame
  // must not pin megabytes to a connection for its lifetime.
  void trim(std::size_t keep) noexcept {
    if (out_.size() > keep) std::vector<std::uint8_t>().swap(out_);
  }
  std::size_t capacity() const noexcept { return out_.size(); }

 private:
  std::uint8_t* reserve(std::size_t n);

  std::uint32_t max_out_;
  std::vector<std::uint8_t> out_;
  ZInflate inflate_;
};

}  // namespace shard::netproto
