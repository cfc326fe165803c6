#include "shard/netproto/frame_decoder.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "compressor.h"
#include "shard/netproto/protocol_error.h"

namespace shard::netproto {

FrameDecoder::FrameDecoder(const DecoderConfig& config) : config_(config) {}

FrameDecoder::~FrameDecoder() = default;

void FrameDecoder::make_room(std::size_t n) {
  if (buffer_.size() - end_ >= n) return;
  const std::size_t used = end_ - begin_;
  if (begin_ > 0 && buffer_.size() - used >= n) {
    // Move the partial frame to the front instead of growing. Amortised: this
    // happens only when the tail is full, and moves at most one frame.
    std::memmove(buffer_.data(), buffer_.data() + begin_, used);
  } else {
    Buffer bigger(std::max({used + n, 2 * buffer_.size(), std::size_t{4096}}), boost::container::default_init);
    if (used > 0) std::memcpy(bigger.data(), buffer_.data() + begin_, used);  // data() may be null
    buffer_.swap(bigger);
  }
  begin_ = 0;
  end_ = used;
}

std::span<std::uint8_t> FrameDecoder::prepare(std::size_t n) {
  if (failed_) throw ProtocolError(ErrorCode::kDecoderFailed, "decoder used after an error");
  make_room(n);
  return {buffer_.data() + end_, n};
}

void FrameDecoder::commit(std::size_t n) {
  end_ += std::min(n, buffer_.size() - end_);
  // Reject an oversized length now, while the rest of the frame is still unsent.
  if (end_ - begin_ >= kLengthBytes) check_length(load_u32le(buffer_.data() + begin_));
}

void FrameDecoder::feed(std::span<const std::uint8_t> bytes) {
  if (bytes.empty()) return;
  std::memcpy(prepare(bytes.size()).data(), bytes.data(), bytes.size());
  commit(bytes.size());
}

namespace {
// Out of line: check_length runs on every frame (see frame_header.cpp).
[[noreturn, gnu::cold, gnu::noinline]] void throw_bad_length(std::uint32_t length, std::uint32_t limit) {
  if (length > limit) {
    throw ProtocolError(ErrorCode::kOversized,
                        "frame length " + std::to_string(length) + " exceeds limit " + std::to_string(limit));
  }
  throw ProtocolError(ErrorCode::kBadHeader, "frame length " + std::to_string(length) + " is shorter than the header");
}
}  // namespace

void FrameDecoder::check_length(std::uint32_t length) {
  if (length > config_.limits.max_frame_bytes || length < kHeaderBytes) {
    failed_ = true;
    throw_bad_length(length, config_.limits.max_frame_bytes);
  }
}

std::size_t FrameDecoder::capacity() const noexcept {
  return buffer_.size() + (decompressor_ ? decompressor_->capacity() : 0);
}

std::optional<Frame> FrameDecoder::next() {
  if (failed_) throw ProtocolError(ErrorCode::kDecoderFailed, "decoder used after an error");
  // The previous frame's payload view ends here, so a big decompression buffer can go.
  if (decompressor_) decompressor_->trim(config_.retain_buffer_bytes);
  const std::size_t avail = end_ - begin_;
  if (avail == 0) {
    begin_ = end_ = 0;
    if (buffer_.size() > config_.retain_buffer_bytes) Buffer().swap(buffer_);
    return std::nullopt;
  }
  if (avail < kLengthBytes) return std::nullopt;
  const std::uint8_t* p = buffer_.data() + begin_;
  const std::uint32_t length = load_u32le(p);
  check_length(length);
  if (avail < kLengthBytes + length) return std::nullopt;

  failed_ = true;  // stays set if anything below throws
  Frame frame{parse_header(p + kLengthBytes), {p + kPrefixBytes, length - kHeaderBytes}};
  if (frame.header.codec != Codec::kNone) {
    if ((config_.allowed_codecs & codec_bit(frame.header.codec)) == 0) {
      throw ProtocolError(ErrorCode::kCodecNotAllowed,
                          "codec " + std::to_string(static_cast<int>(frame.header.codec)) +
                              " was not negotiated on this connection");
    }
    if (!decompressor_) decompressor_ = std::make_unique<Decompressor>(config_.limits.max_decompressed_bytes);
    frame.payload = decompressor_->decompress(frame.header.codec, frame.payload);
  }
  failed_ = false;
  begin_ += kLengthBytes + length;
  return frame;
}

void FrameDecoder::finish() const {
  if (end_ != begin_) {
    throw ProtocolError(ErrorCode::kTruncated, "stream closed inside a frame: " +
                                                   std::to_string(end_ - begin_) + " bytes buffered");
  }
}

}  // namespace shard::netproto
