#pragma once
// Protobuf messages in frames: which kind byte each message type travels under,
// encoding a message straight into the output buffer, and parsing a payload as
// the message its kind names.

#include <google/protobuf/message_lite.h>

#include <string>

#include "shard/netproto/frame_decoder.h"
#include "shard/netproto/frame_encoder.h"
#include "shard/netproto/protocol_error.h"
#include "shard/wire/handshake.pb.h"
#include "shard/wire/movement.pb.h"
#include "shard/wire/rpc.pb.h"
#include "shard/wire/session.pb.h"

namespace shard::netproto {

template <class Message>
struct KindOf;  // no kind for other types: a compile error, not a wrong byte
template <> struct KindOf<wire::Hello> { static constexpr MessageKind value = MessageKind::kHello; };
template <> struct KindOf<wire::HelloReply> { static constexpr MessageKind value = MessageKind::kHelloReply; };
template <> struct KindOf<wire::LoginRequest> { static constexpr MessageKind value = MessageKind::kLogin; };
template <> struct KindOf<wire::LoginReply> { static constexpr MessageKind value = MessageKind::kLoginReply; };
template <> struct KindOf<wire::SessionChange> { static constexpr MessageKind value = MessageKind::kSessionChange; };
template <> struct KindOf<wire::RpcCall> { static constexpr MessageKind value = MessageKind::kRpcCall; };
template <> struct KindOf<wire::RpcReply> { static constexpr MessageKind value = MessageKind::kRpcReply; };
template <> struct KindOf<wire::RpcError> { static constexpr MessageKind value = MessageKind::kRpcError; };
template <> struct KindOf<wire::Notification> { static constexpr MessageKind value = MessageKind::kNotification; };
template <> struct KindOf<wire::Movement> { static constexpr MessageKind value = MessageKind::kMovement; };
template <> struct KindOf<wire::Heartbeat> { static constexpr MessageKind value = MessageKind::kHeartbeat; };
template <> struct KindOf<wire::Close> { static constexpr MessageKind value = MessageKind::kClose; };

template <class Message>
inline constexpr MessageKind kind_of = KindOf<Message>::value;

// Appends `message` as one frame; header.kind is set from the message type.
// A plain frame is serialised in place, with no intermediate copy.
template <class Message>
void append_message(FrameEncoder& encoder, std::vector<std::uint8_t>& out, FrameHeader header,
                    const Message& message) {
  header.kind = kind_of<Message>;
  const std::size_t size = message.ByteSizeLong();
  encoder.append_with(out, header, size, [&](std::uint8_t* dst) {
    message.SerializeWithCachedSizesToArray(dst);
  });
}

// Parses a frame's payload as Message. Throws ProtocolError: kBadHeader if the
// frame's kind is another message's, kBadPayload if the bytes do not parse.
template <class Message>
void parse_message(const Frame& frame, Message& message) {
  if (frame.header.kind != kind_of<Message>) {
    throw ProtocolError(ErrorCode::kBadHeader,
                        "frame of kind " + std::to_string(static_cast<int>(frame.header.kind)) +
                            " parsed as " + message.GetTypeName());
  }
  if (!message.ParseFromArray(frame.payload.data(), static_cast<int>(frame.payload.size()))) {
    throw ProtocolError(ErrorCode::kBadPayload, "payload does not parse as " + message.GetTypeName());
  }
}

}  // namespace shard::netproto
