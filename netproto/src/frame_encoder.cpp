#include "shard/netproto/frame_encoder.h"

#include <cstring>
#include <string>

#include "compressor.h"
#include "shard/netproto/protocol_error.h"

namespace shard::netproto {

FrameEncoder::FrameEncoder(const EncoderConfig& config) : config_(config) {}

FrameEncoder::~FrameEncoder() = default;

void FrameEncoder::check_plain_size(std::size_t size) const {
  const Limits& l = config_.limits;
  if (size > l.max_decompressed_bytes || size > l.max_frame_bytes - kHeaderBytes) {
    throw ProtocolError(ErrorCode::kOversized, "payload of " + std::to_string(size) +
                                                   " bytes exceeds the frame limit " +
                                                   std::to_string(l.max_frame_bytes));
  }
}

void FrameEncoder::append(std::vector<std::uint8_t>& out, const FrameHeader& header,
                          std::span<const std::uint8_t> payload) {
  if (compresses(payload.size())) {
    append_compressed(out, header, payload);
    return;
  }
  append_with(out, header, payload.size(), [&](std::uint8_t* dst) {
    if (!payload.empty()) std::memcpy(dst, payload.data(), payload.size());
  });
}

void FrameEncoder::append_compressed(std::vector<std::uint8_t>& out, const FrameHeader& header,
                                     std::span<const std::uint8_t> payload) {
  const Limits& l = config_.limits;
  if (payload.size() > l.max_decompressed_bytes) {
    throw ProtocolError(ErrorCode::kOversized, "payload of " + std::to_string(payload.size()) +
                                                   " bytes exceeds the decompressed limit " +
                                                   std::to_string(l.max_decompressed_bytes));
  }
  validate(header);  // before compressing anything
  if (!compressor_) compressor_ = std::make_unique<Compressor>(config_.zlib_level);
  const std::size_t start = out.size();
  out.resize(start + kPrefixBytes);
  const std::size_t n = compressor_->compress(config_.codec, payload, out);
  if (n < payload.size() && n <= l.max_frame_bytes - kHeaderBytes) {
    FrameHeader compressed = header;
    compressed.codec = config_.codec;
    write_prefix(out.data() + start, compressed, static_cast<std::uint32_t>(n));
    return;
  }
  // Did not shrink (random or already-compressed data): send it as it is.
  out.resize(start);
  append_plain(out, header, payload.size(), [&](std::uint8_t* dst) {
    std::memcpy(dst, payload.data(), payload.size());
  });
}

}  // namespace shard::netproto
