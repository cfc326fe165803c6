#pragma once
// Frame encoder for one connection's send side. append() adds one whole frame to
// the end of an output buffer, so a writer can batch many queued frames into one
// buffer and one write. Payloads at or above the threshold are compressed with the
// negotiated codec; the frame goes plain when compression does not make it smaller.
//
// Throws ProtocolError(kOversized) for a payload the peer would reject (over
// max_decompressed_bytes, or over max_frame_bytes once encoded); `out` is then
// left as it was. Not thread-safe: one encoder per connection (or per IO thread,
// switching the codec with set_codec()).

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "shard/netproto/codec_config.h"
#include "shard/netproto/frame_header.h"

namespace shard::netproto {

class Compressor;

class FrameEncoder final {
 public:
  explicit FrameEncoder(const EncoderConfig& config = {});
  ~FrameEncoder();
  FrameEncoder(const FrameEncoder&) = delete;
  FrameEncoder& operator=(const FrameEncoder&) = delete;

  // Appends one frame. header.codec is ignored: the encoder decides it.
  void append(std::vector<std::uint8_t>& out, const FrameHeader& header,
              std::span<const std::uint8_t> payload);

  // Appends one frame whose payload is written in place by `write(dst)` into
  // exactly `size` bytes: lets a protobuf serialise straight into the output
  // buffer when the frame goes plain (message_codec.h uses it).
  template <class Write>
  void append_with(std::vector<std::uint8_t>& out, const FrameHeader& header, std::size_t size,
                   Write&& write);

  void set_codec(Codec codec) noexcept { config_.codec = codec; }
  const EncoderConfig& config() const noexcept { return config_; }

 private:
  bool compresses(std::size_t size) const noexcept {
    return config_.codec != Codec::kNone && size >= config_.compress_threshold;
  }
  void check_plain_size(std::size_t size) const;
  template <class Write>
  void append_plain(std::vector<std::uint8_t>& out, const FrameHeader& header, std::size_t size,
                    Write&& write);
  void append_compressed(std::vector<std::uint8_t>& out, const FrameHeader& header,
                         std::span<const std::uint8_t> payload);

  EncoderConfig config_;
  std::unique_ptr<Compressor> compressor_;  // created at the first compressed frame
  std::vector<std::uint8_t> scratch_;        // serialised payload waiting to be compressed
};

template <class Write>
void FrameEncoder::append_with(std::vector<std::uint8_t>& out, const FrameHeader& header,
                               std::size_t size, Write&& write) {
  if (compresses(size)) {
    scratch_.resize(size);
    write(scratch_.data());
    append_compressed(out, header, scratch_);
    return;
  }
  append_plain(out, header, size, write);
}

template <class Write>
void FrameEncoder::append_plain(std::vector<std::uint8_t>& out, const FrameHeader& header,
                                std::size_t size, Write&& write) {
  check_plain_size(size);
  const std::size_t start = out.size();
  FrameHeader plain = header;
  plain.codec = Codec::kNone;
  out.resize(start + kPrefixBytes + size);
  try {
    write_prefix(out.data() + start, plain, static_cast<std::uint32_t>(size));
    write(out.data() + start + kPrefixBytes);
  } catch (...) {
    out.resize(start);
    throw;
  }
}

}  // namespace shard::netproto
