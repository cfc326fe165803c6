#include "shard/netproto/protocol_error.h"

namespace shard::netproto {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::kOversized: return "oversized";
    case ErrorCode::kTruncated: return "truncated";
    case ErrorCode::kBadVersion: return "bad_version";
    case ErrorCode::kBadFlags: return "bad_flags";
    case ErrorCode::kBadHeader: return "bad_header";
    case ErrorCode::kCodecNotAllowed: return "codec_not_allowed";
    case ErrorCode::kDecompressFailed: return "decompress_failed";
    case ErrorCode::kDecompressedTooLarge: return "decompressed_too_large";
    case ErrorCode::kDecoderFailed: return "decoder_failed";
    case ErrorCode::kBadPayload: return "bad_payload";
  }
  return "unknown";
}

ProtocolError::ProtocolError(ErrorCode code, const std::string& message)
    : std::runtime_error("netproto " + std::string(to_string(code)) + ": " + message), code_(code) {}

}  // namespace shard::netproto
