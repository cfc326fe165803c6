#include "shard/netproto/frame_header.h"

#include <string>

#include "shard/netproto/protocol_error.h"

namespace shard::netproto {

namespace {

// The errors are built out of line: every packet goes through the checks,
// and a throw's message inline made each checking function save registers
// and reserve a frame for it on every call.
[[noreturn, gnu::cold, gnu::noinline]] void throw_target_too_wide(std::uint64_t target_id) {
  throw ProtocolError(ErrorCode::kBadHeader, "target id " + std::to_string(target_id) + " does not fit 48 bits");
}

[[noreturn, gnu::cold, gnu::noinline]] void throw_field_out_of_range(unsigned kind) {
  throw ProtocolError(ErrorCode::kBadHeader, "header field out of range (kind " + std::to_string(kind) + ")");
}

[[noreturn, gnu::cold, gnu::noinline]] void throw_bad_byte(const std::uint8_t* h) {
  if (h[0] != kFrameVersion) {
    throw ProtocolError(ErrorCode::kBadVersion,
                        "frame version " + std::to_string(h[0]) + ", expected " + std::to_string(kFrameVersion));
  }
  if (h[1] == 0 || h[1] > kMaxMessageKind) {
    throw ProtocolError(ErrorCode::kBadHeader, "unknown message kind " + std::to_string(h[1]));
  }
  const std::uint8_t flags = h[2];
  if ((flags & kReservedFlagsMask) != 0 || (flags & kCodecMask) == kCodecMask) {
    throw ProtocolError(ErrorCode::kBadFlags, "flags byte " + std::to_string(flags));
  }
  throw ProtocolError(ErrorCode::kBadHeader, "destination kind byte " + std::to_string(h[3]));
}

}  // namespace

void validate(const FrameHeader& header) {
  if (header.target_id > kMaxTargetId) throw_target_too_wide(header.target_id);
  const auto kind = static_cast<unsigned>(header.kind);
  if (kind == 0 || kind > kMaxMessageKind || static_cast<unsigned>(header.dest_kind) > kMaxDestKind ||
      static_cast<unsigned>(header.codec) > 2 || static_cast<unsigned>(header.priority) > 3) {
    throw_field_out_of_range(kind);
  }
}

void write_prefix(std::uint8_t* out, const FrameHeader& header, std::uint32_t wire_payload_size) {
  validate(header);
  store_u32le(out, static_cast<std::uint32_t>(kHeaderBytes) + wire_payload_size);
  out[4] = kFrameVersion;
  out[5] = static_cast<std::uint8_t>(header.kind);
  out[6] = static_cast<std::uint8_t>(static_cast<std::uint8_t>(header.codec) |
                                     (header.native ? kNativeBit : 0) |
                                     (static_cast<std::uint8_t>(header.priority) << kPriorityShift));
  out[7] = static_cast<std::uint8_t>(header.dest_kind);
  store_u16le(out + 8, header.dest_node);
  store_u48le(out + 10, header.target_id);
}

void rewrite_destination(std::uint8_t* prefix, DestKind kind, std::uint16_t node, std::uint64_t target_id) {
  if (target_id > kMaxTargetId) throw_target_too_wide(target_id);
  prefix[7] = static_cast<std::uint8_t>(kind);
  store_u16le(prefix + 8, node);
  store_u48le(prefix + 10, target_id);
}

FrameHeader parse_header(const std::uint8_t* h) {
  const std::uint8_t flags = h[2];
  if (h[0] != kFrameVersion || h[1] == 0 || h[1] > kMaxMessageKind || (flags & kReservedFlagsMask) != 0 ||
      (flags & kCodecMask) == kCodecMask || h[3] > kMaxDestKind) {
    throw_bad_byte(h);
  }
  FrameHeader header;
  header.kind = static_cast<MessageKind>(h[1]);
  header.codec = static_cast<Codec>(flags & kCodecMask);
  header.native = (flags & kNativeBit) != 0;
  header.priority = static_cast<Priority>((flags & kPriorityMask) >> kPriorityShift);
  header.dest_kind = static_cast<DestKind>(h[3]);
  header.dest_node = load_u16le(h + 4);
  header.target_id = load_u48le(h + 6);
  return header;
}

}  // namespace shard::netproto
