// Protobuf messages in frames: the kind table matches kinds.proto, messages
// round trip through the codec, a payload of the wrong kind or garbage is a typed
// error, and the movement message stays compact.
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "shard/netproto/message_codec.h"
#include "shard/wire/kinds.pb.h"
#include "test_frames.h"

namespace shard::netproto {
namespace {

TEST(Messages, KindByteTableMatchesTheProtoEnum) {
  const auto* e = wire::MessageKind_descriptor();
  EXPECT_EQ(e->value_count(), kMaxMessageKind + 1);
  const std::pair<MessageKind, const char*> table[] = {
      {kind_of<wire::Hello>, "HELLO"},          {kind_of<wire::HelloReply>, "HELLO_REPLY"},
      {kind_of<wire::LoginRequest>, "LOGIN"},   {kind_of<wire::LoginReply>, "LOGIN_REPLY"},
      {kind_of<wire::SessionChange>, "SESSION_CHANGE"}, {kind_of<wire::RpcCall>, "RPC_CALL"},
      {kind_of<wire::RpcReply>, "RPC_REPLY"},   {kind_of<wire::RpcError>, "RPC_ERROR"},
      {kind_of<wire::Notification>, "NOTIFICATION"}, {kind_of<wire::Movement>, "MOVEMENT"},
      {kind_of<wire::Heartbeat>, "HEARTBEAT"},  {kind_of<wire::Close>, "CLOSE"},
  };
  for (auto [kind, name] : table) {
    const auto* v = e->FindValueByName(name);
    ASSERT_NE(v, nullptr) << name;
    EXPECT_EQ(v->number(), static_cast<int>(kind)) << name;
  }
}

wire::RpcCall sample_call() {
  wire::RpcCall call;
  call.set_call_id(42);
  call.set_service("chat");
  call.set_method("send");
  call.add_args()->set_string_value("hello");
  call.add_args()->set_int_value(-7);
  auto* list = call.add_args()->mutable_list_value();
  list->add_items()->set_double_value(2.5);
  list->add_items()->set_bytes_value(std::string("\0\1", 2));
  (*call.mutable_kwargs())["channel"].set_int_value(1LL << 40);
  (*call.mutable_kwargs())["quiet"].set_null_value(true);
  return call;
}

TEST(Messages, RpcCallRoundTripsPlainAndCompressed) {
  for (Codec codec : {Codec::kNone, Codec::kSnappy, Codec::kZlib}) {
    EncoderConfig c;
    c.codec = codec;
    c.compress_threshold = 10;
    FrameEncoder encoder(c);
    std::vector<std::uint8_t> wire;
    FrameHeader h;
    h.dest_kind = DestKind::kSol;
    h.target_id = 99;
    wire::RpcCall call = sample_call();
    for (int i = 0; i < 20; ++i) call.add_args()->set_string_value("padding padding padding");
    append_message(encoder, wire, h, call);
    FrameDecoder decoder(testing::accept_all());
    decoder.feed(wire);
    auto frame = decoder.next();
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->header.kind, MessageKind::kRpcCall);
    EXPECT_EQ(frame->header.codec, codec);
    EXPECT_EQ(frame->header.target_id, 99u);
    wire::RpcCall back;
    parse_message(*frame, back);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(back, call));
  }
}

TEST(Messages, WrongKindAndGarbagePayloadAreTypedErrors) {
  FrameEncoder encoder;
  std::vector<std::uint8_t> wire;
  append_message(encoder, wire, {}, sample_call());
  FrameHeader h;
  h.kind = MessageKind::kRpcCall;
  const std::uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff};
  encoder.append(wire, h, garbage);
  FrameDecoder decoder;
  decoder.feed(wire);
  auto frame = decoder.next();
  wire::Movement wrong;
  try {
    parse_message(*frame, wrong);
    FAIL() << "parsed an RpcCall as Movement";
  } catch (const ProtocolError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadHeader);
  }
  frame = decoder.next();
  wire::RpcCall call;
  try {
    parse_message(*frame, call);
    FAIL() << "parsed garbage";
  } catch (const ProtocolError& e) {
    EXPECT_EQ(e.code(), ErrorCode::kBadPayload);
  }
}

TEST(Messages, DeeplyNestedValueIsRejectedByTheParser) {
  // 200 nested lists: over protobuf's recursion limit of 100, so a hostile
  // sender cannot blow the receiver's stack.
  wire::Value v;
  wire::Value* cur = &v;
  for (int i = 0; i < 200; ++i) cur = cur->mutable_list_value()->add_items();
  cur->set_int_value(1);
  wire::RpcReply reply;
  *reply.mutable_result() = v;
  FrameEncoder encoder;
  std::vector<std::uint8_t> wire;
  append_message(encoder, wire, {}, reply);
  FrameDecoder decoder;
  decoder.feed(wire);
  wire::RpcReply back;
  EXPECT_THROW(parse_message(*decoder.next(), back), ProtocolError);
}

TEST(Messages, MovementIsCompactAndFixedSize) {
  wire::Movement m;
  m.set_entity_id(~0ull);
  m.set_x(1e13);
  m.set_y(-1e13);
  m.set_z(3.5);
  m.set_vx(1.f);
  m.set_vy(2.f);
  m.set_vz(3.f);
  m.set_heading(0.5f);
  m.set_sequence(1u << 31);
  m.set_timestamp_us(1ull << 50);
  EXPECT_EQ(m.ByteSizeLong(), 70u);  // docs/protocol.md quotes this
  FrameEncoder encoder;
  std::vector<std::uint8_t> wire;
  FrameHeader h;
  h.native = true;
  h.dest_kind = DestKind::kEntity;
  h.target_id = 12345;
  append_message(encoder, wire, h, m);
  EXPECT_EQ(wire.size(), kPrefixBytes + 70);
}

}  // namespace
}  // namespace shard::netproto
