#pragma once
// The handshake every connection starts with (docs/protocol.md, "Handshake"),
// run on the socket's IO thread before a Connection exists, without Python:
// Hello and HelloReply as the first frames (in the clear, uncompressed), then
// the TLS handshake on the same socket when the reply says so. What it agreed
// configures the Connection (configure()).
//
// A handshake that fails (garbage, a refusal, a TLS error, its timeout, a
// cancel) logs one line with the peer's address and the reason
// ("netproto: handshake with ADDR:PORT failed: REASON"), closes its socket
// and reports the reason; nothing else is touched.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "shard/netproto/connection.h"
#include "shard/netproto/negotiation.h"
#include "shard/netproto/tls.h"

namespace shard::netproto {

// A handshake frame's length field (header + Hello or HelloReply) is at most
// this: both messages are a few dozen bytes, and garbage (an HTTP request, a
// TLS ClientHello sent first) reads as a huge length and is refused at once.
inline constexpr std::uint32_t kMaxHandshakeFrame = 4096;
inline constexpr std::chrono::milliseconds kHandshakeTimeout{10'000};

using LogFn = std::function<void(const std::string&)>;  // null: stderr

struct ServerHandshake {
  ServerPolicy policy;              // tls_supported must say whether tls is set
  std::shared_ptr<TlsContext> tls;  // certificate and key loaded; null: no TLS
  std::chrono::milliseconds timeout = kHandshakeTimeout;
  LogFn log;
};

struct ClientHandshake {
  std::vector<Codec> codecs{Codec::kSnappy, Codec::kZlib};  // offered, preference first
  std::shared_ptr<TlsContext> tls;  // null: TLS not offered
  bool tls_required = false;        // a reply without TLS fails the handshake (no downgrade)
  // The name (or numeric address) the server's certificate must carry when
  // the context verifies; sent as SNI when it is a name.
  std::string server_name;
  wire::PeerRole role = wire::ROLE_CLIENT;
  std::uint32_t node_id = 0;
  std::uint32_t max_frame_bytes = Limits{}.max_frame_bytes;  // this side's receive limit
  std::chrono::milliseconds timeout = kHandshakeTimeout;
  LogFn log;
};

struct Handshaken {
  std::optional<Stream> stream;  // set when it succeeded
  Negotiated negotiated;
  std::string error;  // the reason, when it failed
};

class Handshake final : public std::enable_shared_from_this<Handshake> {
 public:
  using Socket = Stream::Socket;
  using Done = std::function<void(Handshaken)>;

  // `socket` is connected; `done` runs once, on its IO thread.
  static std::shared_ptr<Handshake> accept(Socket socket, std::shared_ptr<const ServerHandshake> config, Done done);
  static std::shared_ptr<Handshake> connect(Socket socket, std::shared_ptr<const ClientHandshake> config, Done done);
  // Any thread: fails it ("cancelled") unless it already ended.
  void cancel();

 private:
  Handshake(Socket socket, std::chrono::milliseconds timeout, LogFn log, Done done);
  using FrameFn = void (Handshake::*)(const FrameHeader&, std::span<const std::uint8_t>);
  void start_(bool server);
  void read_frame_(FrameFn then);
  void on_hello_(const FrameHeader& header, std::span<const std::uint8_t> payload);
  void on_reply_(const FrameHeader& header, std::span<const std::uint8_t> payload);
  template <class Message>
  void write_(const Message& message, std::function<void()> then);
  void start_tls_(bool server);
  void succeed_();
  void fail_(const std::string& reason, bool log = true);
  Socket& socket_ref_();

  Socket socket_;
  std::unique_ptr<Stream::Tls> tls_;  // the socket moved in here once TLS starts
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds timeout_;
  LogFn log_;
  Done done_;
  std::shared_ptr<const ServerHandshake> server_;
  std::shared_ptr<const ClientHandshake> client_;
  std::string peer_;
  std::vector<std::uint8_t> in_, out_;
  Negotiated negotiated_;
  bool ended_ = false;
};

// The encoder's and decoder's codec and limits set to what was agreed.
void configure(ConnectionConfig& config, const Negotiated& negotiated);

}  // namespace shard::netproto
