#pragma once
// The frame prefix: a 4-byte length and a fixed 12-byte routing header, all
// little-endian (docs/protocol.md draws it byte by byte). A router reads and
// rewrites these 16 bytes and never parses the payload; everything here is
// plain arithmetic on bytes, with no allocation and no protobuf.
//
//   offset  size  field
//   0       4     length: bytes after this field (12 header + payload), u32 LE
//   4       1     version (kFrameVersion)
//   5       1     message kind (MessageKind)
//   6       1     flags: bits 0-1 codec, bit 2 native, bits 3-4 priority, 5-7 zero
//   7       1     destination kind (DestKind), bits 4-7 zero
//   8       2     destination node, u16 LE
//   10      6     target id (session or entity id), u48 LE

#include <cstddef>
#include <cstdint>

namespace shard::netproto {

inline constexpr std::size_t kLengthBytes = 4;
inline constexpr std::size_t kHeaderBytes = 12;
inline constexpr std::size_t kPrefixBytes = kLengthBytes + kHeaderBytes;
inline constexpr std::uint8_t kFrameVersion = 1;
inline constexpr std::uint64_t kMaxTargetId = (std::uint64_t{1} << 48) - 1;

// The payload's protobuf type; numbers are mirrored by shard.wire.MessageKind in
// netproto/proto/kinds.proto (a test keeps the two equal). 0 is never valid, so a
// zeroed header is rejected.
enum class MessageKind : std::uint8_t {
  kHello = 1,          // Hello: client (or proxy) offers versions, codecs, TLS
  kHelloReply = 2,     // HelloReply: server picks
  kLogin = 3,          // LoginRequest
  kLoginReply = 4,     // LoginReply
  kSessionChange = 5,  // SessionChange
  kRpcCall = 6,        // RpcCall
  kRpcReply = 7,       // RpcReply
  kRpcError = 8,       // RpcError
  kNotification = 9,   // Notification
  kMovement = 10,      // Movement (usually native: no Python on the way)
  kHeartbeat = 11,     // Heartbeat
  kClose = 12,         // Close: the sender closes, with a reason
};
inline constexpr std::uint8_t kMaxMessageKind = 12;

// Payload compression of one frame (2 bits in the flags).
enum class Codec : std::uint8_t { kNone = 0, kSnappy = 1, kZlib = 2 };

// Send-queue class (2 bits in the flags): higher goes first; 3 is control traffic.
enum class Priority : std::uint8_t { kBulk = 0, kNormal = 1, kHigh = 2, kControl = 3 };

// Who the frame is for; with dest_node and target_id this is all a router needs.
enum class DestKind : std::uint8_t {
  kPeer = 0,     // the hop that receives it (handshake, heartbeat, close)
  kClient = 1,   // a client session: target_id = session id, dest_node = its proxy
  kProxy = 2,    // proxy node dest_node (target_id = session id it concerns, or 0)
  kSol = 3,      // sol node dest_node, 0 = "the proxy picks"; target_id = session id
  kEntity = 4,   // the sol that owns entity target_id (movement)
};
inline constexpr std::uint8_t kMaxDestKind = 4;

struct FrameHeader {
  MessageKind kind = MessageKind::kHeartbeat;
  Codec codec = Codec::kNone;
  bool native = false;  // handled in C++ without the interpreter (movement)
  Priority priority = Priority::kNormal;
  DestKind dest_kind = DestKind::kPeer;
  std::uint16_t dest_node = 0;
  std::uint64_t target_id = 0;  // at most kMaxTargetId

  friend bool operator==(const FrameHeader&, const FrameHeader&) = default;
};

// Bit layout of the flags byte.
inline constexpr std::uint8_t kCodecMask = 0x03;
inline constexpr std::uint8_t kNativeBit = 0x04;
inline constexpr int kPriorityShift = 3;
inline constexpr std::uint8_t kPriorityMask = 0x18;
inline constexpr std::uint8_t kReservedFlagsMask = 0xE0;

inline void store_u16le(std::uint8_t* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
// Written out byte by byte, without loops: the compiler merges them into one
// load or store each (a loop of six stayed a loop, on every packet).
inline void store_u32le(std::uint8_t* p, std::uint32_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
  p[2] = static_cast<std::uint8_t>(v >> 16);
  p[3] = static_cast<std::uint8_t>(v >> 24);
}
inline void store_u48le(std::uint8_t* p, std::uint64_t v) noexcept {
  store_u32le(p, static_cast<std::uint32_t>(v));
  store_u16le(p + 4, static_cast<std::uint16_t>(v >> 32));
}
inline std::uint16_t load_u16le(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
inline std::uint32_t load_u32le(const std::uint8_t* p) noexcept {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
         (std::uint32_t{p[3]} << 24);
}
inline std::uint64_t load_u48le(const std::uint8_t* p) noexcept {
  return std::uint64_t{load_u32le(p)} | (std::uint64_t{load_u16le(p + 4)} << 32);
}

// Throws ProtocolError(kBadHeader) for a header that cannot be encoded: a target
// id over 48 bits or an enum value outside its range.
void validate(const FrameHeader& header);

// Writes the 16-byte prefix of a frame whose (possibly compressed) payload is
// `wire_payload_size` bytes. The caller has checked the size against its limit;
// validates the header first.
void write_prefix(std::uint8_t* out, const FrameHeader& header, std::uint32_t wire_payload_size);

// A router's edit: sets the destination of an encoded frame in place (`prefix`
// points at its length field). The payload is not touched. Throws
// ProtocolError(kBadHeader) for a target id over 48 bits.
void rewrite_destination(std::uint8_t* prefix, DestKind kind, std::uint16_t node, std::uint64_t target_id);

// Parses and validates the 12 header bytes (the ones after the length field).
// Throws ProtocolError: kBadVersion, kBadFlags, kBadHeader.
FrameHeader parse_header(const std::uint8_t* header);

}  // namespace shard::netproto
