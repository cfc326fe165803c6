#pragma once
// The one error type of the wire layer. Bytes from the network are hostile: any
// violation of the framing rules is a ProtocolError carrying a typed code (what the
// connection layer logs, counts and decides on) and a message with the offending
// values. The connection that produced it must be closed; decoders stay failed.

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace shard::netproto {

enum class ErrorCode : std::uint8_t {
  kOversized = 1,            // a length field above the configured limit (checked before allocating)
  kTruncated,                // the stream ended inside a frame
  kBadVersion,               // header version byte is not kFrameVersion
  kBadFlags,                 // reserved flag bits set or an unknown codec value
  kBadHeader,                // unknown message kind or destination kind, reserved bits set, length too small
  kCodecNotAllowed,          // a compressed frame in a codec this connection did not negotiate
  kDecompressFailed,         // corrupt compressed payload, or its size differs from the declared size
  kDecompressedTooLarge,     // declared or actual decompressed size above the limit (zip bomb)
  kDecoderFailed,            // the decoder was used again after it reported an error
  kBadPayload,               // the payload does not parse as the protobuf its kind names
};

std::string_view to_string(ErrorCode code) noexcept;

class ProtocolError final : public std::runtime_error {
 public:
  ProtocolError(ErrorCode code, const std::string& message);
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace shard::netproto
