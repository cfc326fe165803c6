#include "shard/netproto/frame_header.h"

#include <string>

#include "shard/netproto/protocol_error.h"

namespace shard::netproto {

void validate(const FrameHeader& header) {
  if (header.target_id > kMaxTargetId) {
    throw ProtocolError(ErrorCode::kBadHeader,
                        "target id " + std::to_string(header.target_id) + " does not fit 48 bits");
  }
  const auto kind = static_cast<unsigned>(header.kind);
  if (kind == 0 || kind > kMaxMessageKind || static_cast<unsigned>(header.dest_kind) > kMaxDestKind ||
      static_cast<unsigned>(header.codec) > 2 || static_cast<unsigned>(header.priority) > 3) {
    throw ProtocolError(ErrorCode::kBadHeader, "header field out of range (kind " +
                                                   std::to_string(kind) + ")");
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
  std::uint64_t id = header.target_id;
  for (int i = 0; i < 6; ++i) out[10 + i] = static_cast<std::uint8_t>(id >> (8 * i));
}

void rewrite_destination(std::uint8_t* prefix, DestKind kind, std::uint16_t node, std::uint64_t target_id) {
  if (target_id > kMaxTargetId) {
    throw ProtocolError(ErrorCode::kBadHeader, "target id " + std::to_string(target_id) + " does not fit 48 bits");
  }
  prefix[7] = static_cast<std::uint8_t>(kind);
  store_u16le(prefix + 8, node);
  for (int i = 0; i < 6; ++i) prefix[10 + i] = static_cast<std::uint8_t>(target_id >> (8 * i));
}

FrameHeader parse_header(const std::uint8_t* h) {
  if (h[0] != kFrameVersion) {
    throw ProtocolError(ErrorCode::kBadVersion, "frame version " + std::to_string(h[0]) +
                                                    ", expected " + std::to_string(kFrameVersion));
  }
  if (h[1] == 0 || h[1] > kMaxMessageKind) {
    throw ProtocolError(ErrorCode::kBadHeader, "unknown message kind " + std::to_string(h[1]));
  }
  const std::uint8_t flags = h[2];
  if ((flags & kReservedFlagsMask) != 0 || (flags & kCodecMask) == kCodecMask) {
    throw ProtocolError(ErrorCode::kBadFlags, "flags byte " + std::to_string(flags));
  }
  if (h[3] > kMaxDestKind) {
    throw ProtocolError(ErrorCode::kBadHeader, "destination kind byte " + std::to_string(h[3]));
  }
  FrameHeader header;
  header.kind = static_cast<MessageKind>(h[1]);
  header.codec = static_cast<Codec>(flags & kCodecMask);
  header.native = (flags & kNativeBit) != 0;
  header.priority = static_cast<Priority>((flags & kPriorityMask) >> kPriorityShift);
  header.dest_kind = static_cast<DestKind>(h[3]);
  header.dest_node = load_u16le(h + 4);
  std::uint64_t id = 0;
  for (int i = 0; i < 6; ++i) id |= std::uint64_t{h[6 + i]} << (8 * i);
  header.target_id = id;
  return header;
}

}  // namespace shard::netproto
