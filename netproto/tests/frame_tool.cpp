// Writes and reads frame files for the interoperability test with the Python
// reference codec (tools/tests/wire_interop_test.py).
//
//   netproto_frame_tool write FILE   frames of every kind, codec and flag set; one
//                                    JSON line per frame on stdout (what was sent)
//   netproto_frame_tool read FILE [MAX_FRAME MAX_DECOMPRESSED]
//                                    one JSON line per decoded frame, or
//                                    {"error": code} and exit status 2
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "shard/netproto/message_codec.h"

namespace net = shard::netproto;
namespace wire = shard::wire;

namespace {

std::string hex(std::span<const std::uint8_t> bytes) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  for (std::uint8_t b : bytes) {
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

void print_frame(const net::FrameHeader& h, std::span<const std::uint8_t> payload, bool parsed) {
  std::printf(
      "{\"kind\": %d, \"codec\": %d, \"native\": %s, \"priority\": %d, \"dest_kind\": %d, "
      "\"dest_node\": %d, \"target_id\": %llu, \"parsed\": %s, \"payload\": \"%s\"}\n",
      static_cast<int>(h.kind), static_cast<int>(h.codec), h.native ? "true" : "false",
      static_cast<int>(h.priority), static_cast<int>(h.dest_kind), h.dest_node,
      static_cast<unsigned long long>(h.target_id), parsed ? "true" : "false", hex(payload).c_str());
}

template <class Message>
bool parses(const net::Frame& frame) {
  Message m;
  try {
    net::parse_message(frame, m);
    return true;
  } catch (const net::ProtocolError&) {
    return false;
  }
}

bool parses_as_its_kind(const net::Frame& f) {
  using K = net::MessageKind;
  switch (f.header.kind) {
    case K::kHello: return parses<wire::Hello>(f);
    case K::kHelloReply: return parses<wire::HelloReply>(f);
    case K::kLogin: return parses<wire::LoginRequest>(f);
    case K::kLoginReply: return parses<wire::LoginReply>(f);
    case K::kSessionChange: return parses<wire::SessionChange>(f);
    case K::kRpcCall: return parses<wire::RpcCall>(f);
    case K::kRpcReply: return parses<wire::RpcReply>(f);
    case K::kRpcError: return parses<wire::RpcError>(f);
    case K::kNotification: return parses<wire::Notification>(f);
    case K::kMovement: return parses<wire::Movement>(f);
    case K::kHeartbeat: return parses<wire::Heartbeat>(f);
    case K::kClose: return parses<wire::Close>(f);
  }
  return false;
}

// The messages the C++ side sends; the Python test checks their fields.
template <class Message>
void send(net::FrameEncoder& enc, std::vector<std::uint8_t>& out, net::FrameHeader h, const Message& m) {
  const std::size_t start = out.size();
  net::append_message(enc, out, h, m);
  net::FrameDecoder d({.allowed_codecs = 7});  // decode our own frame to print what was sent
  d.feed({out.data() + start, out.size() - start});
  auto f = d.next();
  print_frame(f->header, f->payload, true);
}

int write_file(const char* path) {
  std::vector<std::uint8_t> out;
  for (net::Codec codec : {net::Codec::kNone, net::Codec::kSnappy, net::Codec::kZlib}) {
    net::FrameEncoder enc({.codec = codec, .compress_threshold = 64});
    wire::Hello hello;
    hello.set_min_version(1);
    hello.set_max_version(1);
    hello.add_compression(wire::COMPRESSION_SNAPPY);
    hello.add_compression(wire::COMPRESSION_ZLIB);
    hello.set_software("frame_tool");
    send(enc, out, {.priority = net::Priority::kControl}, hello);

    wire::RpcCall call;
    call.set_call_id(7);
    call.set_service("chat");
    call.set_method("send");
    for (int i = 0; i < 10; ++i) call.add_args()->set_string_value("a chat line that repeats itself");
    call.add_args()->set_int_value(-(1LL << 40));
    call.add_args()->set_double_value(0.25);
    send(enc, out, {.dest_kind = net::DestKind::kSol, .dest_node = 3, .target_id = 0xABCDEF123456ull}, call);

    wire::Movement m;
    m.set_entity_id(123456789);
    m.set_x(1e12);
    m.set_vy(-3.5f);
    m.set_sequence(42);
    m.set_timestamp_us(1'700'000'000'000'000ull);
    send(enc, out, {.native = true, .priority = net::Priority::kHigh, .dest_kind = net::DestKind::kEntity,
                    .target_id = 123456789}, m);

    wire::Heartbeat hb;
    hb.set_nonce(99);
    send(enc, out, {.priority = net::Priority::kBulk}, hb);
  }
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(out.data()),
                                              static_cast<std::streamsize>(out.size()));
  return 0;
}

int read_file(const char* path, net::Limits limits) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<std::uint8_t> bytes{std::istreambuf_iterator<char>(in), {}};
  net::FrameDecoder d({.limits = limits, .allowed_codecs = 7});
  try {
    // Odd chunks, so the read path sees frames split across feeds.
    for (std::size_t at = 0; at < bytes.size(); at += 7) {
      d.feed({bytes.data() + at, std::min<std::size_t>(7, bytes.size() - at)});
      while (auto f = d.next()) print_frame(f->header, f->payload, parses_as_its_kind(*f));
    }
    d.finish();
  } catch (const net::ProtocolError& e) {
    std::printf("{\"error\": \"%s\"}\n", std::string(net::to_string(e.code())).c_str());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 2 ? argv[1] : "";
  if (cmd == "write") return write_file(argv[2]);
  if (cmd == "read") {
    net::Limits limits;
    if (argc > 4) limits = {static_cast<std::uint32_t>(std::stoul(argv[3])),
                            static_cast<std::uint32_t>(std::stoul(argv[4]))};
    return read_file(argv[2], limits);
  }
  std::fprintf(stderr, "usage: %s write FILE | read FILE [MAX_FRAME MAX_DECOMPRESSED]\n", argv[0]);
  return 64;
}
