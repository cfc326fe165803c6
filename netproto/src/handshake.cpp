#include "shard/netproto/handshake.h"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <cstdio>

#include "shard/netproto/message_codec.h"
#include "shard/netproto/protocol_error.h"

namespace shard::netproto {
namespace {

namespace asio = boost::asio;

Negotiated from_reply(const wire::HelloReply& reply) {
  Negotiated n;
  n.version = reply.version();
  n.codec = static_cast<Codec>(reply.compression());
  n.compress_threshold = reply.compress_threshold();
  n.limits = {reply.max_frame_bytes(), reply.max_decompressed_bytes()};
  n.heartbeat_interval_ms = reply.heartbeat_interval_ms();
  return n;
}

bool is_address(const std::string& host) {
  boost::system::error_code error;
  asio::ip::make_address(host, error);
  return !error;
}

std::string read_error(const boost::system::error_code& error) {
  if (error == asio::error::eof) return "the peer closed the connection during the handshake";
  return "reading the handshake: " + error.message();
}

}  // namespace

std::shared_ptr<Handshake> Handshake::accept(Socket socket, std::shared_ptr<const ServerHandshake> config,
                                             Done done) {
  const auto timeout = config->timeout;
  LogFn log = config->log;
  std::shared_ptr<Handshake> h(new Handshake(std::move(socket), timeout, std::move(log), std::move(done)));
  h->server_ = std::move(config);
  h->start_(true);
  return h;
}

std::shared_ptr<Handshake> Handshake::connect(Socket socket, std::shared_ptr<const ClientHandshake> config,
                                              Done done) {
  const auto timeout = config->timeout;
  LogFn log = config->log;
  std::shared_ptr<Handshake> h(new Handshake(std::move(socket), timeout, std::move(log), std::move(done)));
  h->client_ = std::move(config);
  h->start_(false);
  return h;
}

Handshake::Handshake(Socket socket, std::chrono::milliseconds timeout, LogFn log, Done done)
    : socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      timeout_(timeout),
      log_(std::move(log)),
      done_(std::move(done)) {
  boost::system::error_code error;
  auto remote = socket_.remote_endpoint(error);
  peer_ = error ? std::string("(unknown peer)") : remote.address().to_string() + ":" + std::to_string(remote.port());
}

Handshake::Socket& Handshake::socket_ref_() { return tls_ ? tls_->next_layer() : socket_; }

void Handshake::cancel() {
  asio::post(timer_.get_executor(), [self = shared_from_this()] { self->fail_("cancelled", false); });
}

void Handshake::start_(bool server) {
  asio::post(timer_.get_executor(), [self = shared_from_this(), server] {
    if (self->ended_) return;
    self->timer_.expires_after(self->timeout_);
    self->timer_.async_wait([self](const boost::system::error_code& error) {
      if (!error) self->fail_("timed out after " + std::to_string(self->timeout_.count()) + " ms");
    });
    if (server) return self->read_frame_(&Handshake::on_hello_);
    const ClientHandshake& c = *self->client_;
    wire::Hello hello;
    hello.set_min_version(kProtocolVersion);
    hello.set_max_version(kProtocolVersion);
    for (Codec codec : c.codecs) {
      if (codec != Codec::kNone) hello.add_compression(static_cast<wire::Compression>(codec));
    }
    hello.set_tls_supported(c.tls != nullptr);
    hello.set_tls_required(c.tls != nullptr && c.tls_required);
    hello.set_role(c.role);
    hello.set_node_id(c.node_id);
    hello.set_software("shard netproto");
    hello.set_max_frame_bytes(c.max_frame_bytes);
    self->write_(hello, [self] { self->read_frame_(&Handshake::on_reply_); });
  });
}

// Exactly one frame: the length, then that many bytes. Reading no further
// leaves whatever follows (a TLS ClientHello, early frames) in the socket for
// whoever reads next.
void Handshake::read_frame_(FrameFn then) {
  in_.resize(kLengthBytes);
  asio::async_read(socket_, asio::buffer(in_), [self = shared_from_this(), then](auto error, std::size_t) {
    if (self->ended_) return;
    if (error) return self->fail_(read_error(error));
    const std::uint32_t length = load_u32le(self->in_.data());
    if (length < kHeaderBytes || length > kMaxHandshakeFrame) {
      return self->fail_("handshake frame length " + std::to_string(length) + " out of range " +
                         std::to_string(kHeaderBytes) + ".." + std::to_string(kMaxHandshakeFrame) +
                         " (not a shard peer?)");
    }
    self->in_.resize(kLengthBytes + length);
    asio::async_read(self->socket_, asio::buffer(self->in_.data() + kLengthBytes, length),
                     [self, then](auto error, std::size_t) {
                       if (self->ended_) return;
                       if (error) return self->fail_(read_error(error));
                       try {
                         const FrameHeader header = parse_header(self->in_.data() + kLengthBytes);
                         if (header.codec != Codec::kNone) {
                           throw ProtocolError(ErrorCode::kCodecNotAllowed, "a compressed handshake frame");
                         }
                         (self.get()->*then)(header, std::span<const std::uint8_t>(self->in_).subspan(kPrefixBytes));
                       } catch (const std::exception& e) {
                         self->fail_(e.what());
                       }
                     });
  });
}

template <class Message>
void Handshake::write_(const Message& message, std::function<void()> then) {
  FrameHeader header;
  header.priority = Priority::kControl;
  FrameEncoder encoder;
  out_.clear();
  append_message(encoder, out_, header, message);
  asio::async_write(socket_, asio::buffer(out_),
                    [self = shared_from_this(), then = std::move(then)](auto error, std::size_t) {
                      if (self->ended_) return;
                      if (error) return self->fail_("writing the handshake: " + error.message());
                      then();
                    });
}

void Handshake::on_hello_(const FrameHeader& header, std::span<const std::uint8_t> payload) {
  wire::Hello hello;
  parse_message(Frame{header, payload}, hello);
  const wire::HelloReply reply = negotiate(hello, server_->policy);
  if (!reply.accepted()) {
    // The client learns why before the socket closes.
    return write_(reply, [self = shared_from_this(), reason = reply.reason()] { self->fail_("refused: " + reason); });
  }
  negotiated_ = from_reply(reply);
  negotiated_.peer_role = hello.role();
  negotiated_.peer_node_id = hello.node_id();
  write_(reply, [self = shared_from_this(), tls = reply.tls()] {
    if (tls) return self->start_tls_(true);
    self->succeed_();
  });
}

void Handshake::on_reply_(const FrameHeader& header, std::span<const std::uint8_t> payload) {
  wire::HelloReply reply;
  parse_message(Frame{header, payload}, reply);
  if (!reply.accepted()) return fail_("refused by the server: " + reply.reason());
  check_reply(reply);
  if (reply.version() != kProtocolVersion) return fail_("the server chose version " + std::to_string(reply.version()));
  if (reply.tls() && client_->tls == nullptr) return fail_("the server chose TLS, which this side did not offer");
  if (!reply.tls() && client_->tls_required) return fail_("the server did not agree to TLS, which this side requires");
  negotiated_ = from_reply(reply);
  negotiated_.peer_role = reply.role();
  negotiated_.peer_node_id = reply.node_id();
  if (reply.tls()) return start_tls_(false);
  succeed_();
}

void Handshake::start_tls_(bool server) {
  TlsContext& context = server ? *server_->tls : *client_->tls;
  try {
    tls_ = std::make_unique<Stream::Tls>(std::move(socket_), context.native_handle(), server);
  } catch (const std::exception& e) {
    return fail_(std::string("TLS: ") + e.what());
  }
  if (!server && !client_->server_name.empty()) {
    // The certificate must name the host dialled (checked when the context
    // verifies): a DNS name, or an IP address SAN for a numeric host.
    const std::string& name = client_->server_name;
    SSL* ssl = tls_->native_handle();
    if (is_address(name)) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl, name.c_str());
      SSL_set1_host(ssl, name.c_str());
    }
  }
  tls_->async_handshake([self = shared_from_this()](const boost::system::error_code& error) {
    if (self->ended_) return;
    if (error) {
      std::string reason = "TLS handshake: " + error.message();
      const long verify = SSL_get_verify_result(self->tls_->native_handle());
      if (verify != X509_V_OK) reason += std::string(" (") + X509_verify_cert_error_string(verify) + ")";
      return self->fail_(reason);
    }
    self->succeed_();
  });
}

void Handshake::succeed_() {
  ended_ = true;
  timer_.cancel();
  Handshaken result;
  if (tls_) {
    result.stream.emplace(std::move(tls_));
    negotiated_.tls = result.stream->tls_description();
  } else {
    result.stream.emplace(std::move(socket_));
  }
  result.negotiated = negotiated_;
  Done done = std::move(done_);
  done(std::move(result));
}

void Handshake::fail_(const std::string& reason, bool log) {
  if (ended_) return;
  ended_ = true;
  timer_.cancel();
  boost::system::error_code ignored;
  socket_ref_().shutdown(Socket::shutdown_both, ignored);
  socket_ref_().close(ignored);
  // A cancel is its owner's doing (a listener closing, a waiter killed): no news.
  if (log) {
    const std::string line = "netproto: handshake with " + peer_ + " failed: " + reason;
    if (log_) {
      log_(line);
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
  }
  Handshaken result;
  result.error = reason;
  Done done = std::move(done_);
  done(std::move(result));
}

void configure(ConnectionConfig& config, const Negotiated& negotiated) {
  config.encoder.limits = config.decoder.limits = negotiated.limits;
  config.encoder.codec = negotiated.codec;
  config.encoder.compress_threshold = negotiated.compress_threshold;
  config.decoder.allowed_codecs = static_cast<std::uint8_t>(codec_bit(Codec::kNone) | codec_bit(negotiated.codec));
  config.negotiated = negotiated;
}

}  // namespace shard::netproto
