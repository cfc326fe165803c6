// The handshake on real loopback connections (one io_context thread standing
// for an IO thread): the codec each combination of offers negotiates, TLS with
// the development certificate, and every way it fails (garbage, silence, a
// plain client to a TLS listener, an unknown CA, an expired or unverifiable
// certificate) logged with the peer's address, closing only that connection.
// The certificates come from ops/devcert.sh, run by the build.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shard/netproto/handshake.h"
#include "shard/netproto/listener.h"
#include "shard/netproto/message_codec.h"
#include "test_frames.h"

namespace shard::netproto {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

const std::string kCerts = SHARD_DEVCERT_DIR;  // dev.crt/dev.key; -other, -expired beside it

template <class F>
bool eventually(F condition, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

std::shared_ptr<TlsContext> server_tls(const std::string& dir) {
  std::string error;
  auto tls = make_server_tls(dir + "/dev.crt", dir + "/dev.key", &error);
  EXPECT_NE(tls, nullptr) << error;
  return tls;
}

std::shared_ptr<TlsContext> client_tls(const std::string& ca, bool verify = true) {
  std::string error;
  auto tls = make_client_tls(ca, verify, &error);
  EXPECT_NE(tls, nullptr) << error;
  return tls;
}

class HandshakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_->log = [this](const std::string& line) { log(line); };
    config_.connection.log = server_->log;
    thread_ = std::thread([this] { context_.run(); });
  }
  void TearDown() override {
    for (auto& c : connections_) c->close();
    if (listener_) listener_->close();
    work_.reset();
    thread_.join();
  }
  void log(const std::string& line) {
    std::lock_guard lock(log_mutex_);
    log_.push_back(line);
  }
  bool logged(const std::string& needle) {
    std::lock_guard lock(log_mutex_);
    for (auto& line : log_) {
      if (line.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  void listen() {
    server_->policy.tls_supported = server_->tls != nullptr;
    config_.handshake = server_;
    std::error_code error;
    listener_ = Listener::create(context_, {asio::ip::make_address("127.0.0.1"), 0}, config_, nullptr, error);
    ASSERT_FALSE(error) << error.message();
    listener_->start();
  }
  // Connects and handshakes as `client` says; the result once it ended.
  // `receive_buffer`: the client socket's SO_RCVBUF, if not 0 (no autotuning).
  Handshaken dial(ClientHandshake client, int receive_buffer = 0) {
    client.log = [this](const std::string& line) { log("client " + line); };
    tcp::socket socket(context_);
    socket.open(tcp::v4());
    if (receive_buffer != 0) socket.set_option(asio::socket_base::receive_buffer_size(receive_buffer));
    socket.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
    std::promise<Handshaken> promise;
    auto future = promise.get_future();
    Handshake::connect(std::move(socket), std::make_shared<const ClientHandshake>(std::move(client)),
                       [&promise](Handshaken result) { promise.set_value(std::move(result)); });
    EXPECT_EQ(future.wait_for(10s), std::future_status::ready) << "suspected deadlock: the handshake never ended";
    return future.get();
  }
  // A client connection made from a successful handshake.
  std::shared_ptr<Connection> client(ClientHandshake offer) {
    Handshaken result = dial(std::move(offer));
    EXPECT_TRUE(result.stream.has_value()) << result.error;
    if (!result.stream) return nullptr;
    ConnectionConfig config;
    configure(config, result.negotiated);
    auto c = Connection::create(std::move(*result.stream), std::move(config));
    c->start();
    connections_.push_back(c);
    return c;
  }
  std::shared_ptr<Connection> accepted() {
    std::shared_ptr<Connection> c;
    EXPECT_TRUE(eventually([&] { return (c = listener_->try_accept().connection) != nullptr; }));
    if (c) connections_.push_back(c);
    return c;
  }
  // A payload crosses each way intact.
  static void round_trip(Connection& a, Connection& b, const std::vector<std::uint8_t>& payload) {
    FrameHeader header;
    header.kind = MessageKind::kNotification;
    for (auto [from, to] : {std::pair{&a, &b}, std::pair{&b, &a}}) {
      ASSERT_EQ(from->send(header, payload), Connection::SendResult::kQueued);
      std::optional<Packet> p;
      ASSERT_TRUE(eventually([&] { return (p = to->try_receive()).has_value(); }));
      EXPECT_EQ(p->payload, payload);
    }
  }

  asio::io_context context_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{context_.get_executor()};
  std::thread thread_;
  std::shared_ptr<ServerHandshake> server_ = std::make_shared<ServerHandshake>();
  ListenerConfig config_;
  std::shared_ptr<Listener> listener_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

TEST_F(HandshakeTest, EachCombinationOfOffersNegotiatesItsCodecAndFramesTravelInIt) {
  struct Case {
    std::vector<Codec> server, client;
    Codec expected;
  };
  const Case cases[] = {
      {{Codec::kSnappy, Codec::kZlib}, {Codec::kSnappy, Codec::kZlib}, Codec::kSnappy},  // both offer snappy
      {{Codec::kSnappy, Codec::kZlib}, {Codec::kZlib}, Codec::kZlib},                    // one offers only zlib
      {{Codec::kZlib, Codec::kSnappy}, {Codec::kSnappy, Codec::kZlib}, Codec::kZlib},    // the server's order wins
      {{Codec::kSnappy, Codec::kZlib}, {}, Codec::kNone},                                // the client offers none
      {{}, {Codec::kSnappy, Codec::kZlib}, Codec::kNone},                                // the server allows none
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.server.size()) + " server codecs, " + std::to_string(c.client.size()) + " offered");
    server_->policy.codecs = c.server;
    server_->policy.compress_threshold = 100;
    listen();
    ClientHandshake offer;
    offer.codecs = c.client;
    auto client_side = client(offer);
    auto server_side = accepted();
    ASSERT_TRUE(client_side && server_side);
    EXPECT_EQ(client_side->negotiated().codec, c.expected);
    EXPECT_EQ(server_side->negotiated().codec, c.expected);
    EXPECT_EQ(client_side->negotiated().compress_threshold, 100u);
    EXPECT_TRUE(client_side->negotiated().tls.empty());
    const auto big = testing::compressible(100'000);
    round_trip(*client_side, *server_side, big);
    // Compressed on the wire exactly when a codec was agreed.
    const std::uint64_t sent = client_side->stats().bytes_out;
    if (c.expected == Codec::kNone) {
      EXPECT_GT(sent, big.size());
    } else {
      EXPECT_LT(sent, big.size() * 3 / 4);
    }
    listener_->close();
  }
}

TEST_F(HandshakeTest, APayloadBelowTheThresholdTravelsPlain) {
  server_->policy.compress_threshold = 1000;
  listen();
  auto c = client({});
  auto s = accepted();
  ASSERT_TRUE(c && s);
  ASSERT_EQ(c->negotiated().codec, Codec::kSnappy);
  round_trip(*c, *s, std::vector<std::uint8_t>(999, 'a'));
  EXPECT_EQ(c->stats().bytes_out, kPrefixBytes + 999);
}

TEST_F(HandshakeTest, GarbageIsCutOffWithALoggedReasonAndTheListenerGoesOn) {
  server_->timeout = 10s;
  listen();
  asio::io_context raw_context;
  tcp::socket raw(raw_context);
  raw.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  asio::write(raw, asio::buffer(request));
  ASSERT_TRUE(eventually([&] { return listener_->stats().handshake_failed == 1; }));
  EXPECT_TRUE(logged("netproto: handshake with 127.0.0.1:" + std::to_string(raw.local_endpoint().port()) +
                     " failed: handshake frame length"));
  char byte;
  boost::system::error_code error;
  raw.read_some(asio::buffer(&byte, 1), error);
  EXPECT_TRUE(error == asio::error::eof || error == asio::error::connection_reset) << error.message();
  EXPECT_EQ(listener_->try_accept().connection, nullptr);  // the consumer never sees it
  auto c = client({});
  auto s = accepted();
  ASSERT_TRUE(c && s);
  round_trip(*c, *s, {1, 2, 3});
}

TEST_F(HandshakeTest, AHelloThatIsNotAHelloIsRefused) {
  listen();
  asio::io_context raw_context;
  tcp::socket raw(raw_context);
  raw.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
  FrameEncoder encoder;
  std::vector<std::uint8_t> frame;
  FrameHeader header;
  header.kind = MessageKind::kNotification;
  encoder.append(frame, header, std::vector<std::uint8_t>{1, 2, 3});
  asio::write(raw, asio::buffer(frame));
  ASSERT_TRUE(eventually([&] { return listener_->stats().handshake_failed == 1; }));
  EXPECT_TRUE(logged("parsed as shard.wire.Hello"));
}

TEST_F(HandshakeTest, AClientThatNeverFinishesTimesOutAndOthersAreServedMeanwhile) {
  server_->timeout = 300ms;
  listen();
  asio::io_context raw_context;
  tcp::socket silent(raw_context), half(raw_context);
  silent.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
  half.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
  const std::uint8_t length_only[] = {20, 0, 0, 0, 1};  // a length and one byte of the header
  asio::write(half, asio::buffer(length_only));
  auto c = client({});  // served while the two hang
  auto s = accepted();
  ASSERT_TRUE(c && s);
  ASSERT_TRUE(eventually([&] { return listener_->stats().handshake_failed == 2; }));
  EXPECT_TRUE(logged(":" + std::to_string(silent.local_endpoint().port()) + " failed: timed out after 300 ms"));
  EXPECT_TRUE(logged(":" + std::to_string(half.local_endpoint().port()) + " failed: timed out after 300 ms"));
  EXPECT_EQ(listener_->stats().open, 1u);  // their slots are free again
  round_trip(*c, *s, {4, 5, 6});
}

TEST_F(HandshakeTest, TlsWithTheDevelopmentCertificateCarriesFramesBothWays) {
  server_->tls = server_tls(kCerts);
  listen();
  ClientHandshake offer;
  offer.tls = client_tls(kCerts + "/dev.crt");
  offer.tls_required = true;
  offer.server_name = "127.0.0.1";
  auto c = client(offer);
  auto s = accepted();
  ASSERT_TRUE(c && s);
  EXPECT_EQ(c->negotiated().tls.rfind("TLSv1.3 ", 0), 0u) << c->negotiated().tls;
  EXPECT_EQ(s->negotiated().tls, c->negotiated().tls);
  round_trip(*c, *s, {7, 8, 9});
  round_trip(*c, *s, testing::compressible(300'000));  // many records, compressed inside TLS
  // The peer's close reads as an orderly end, though TLS's close_notify is not sent.
  c->close();
  ASSERT_TRUE(eventually([&] { return s->closed(); }));
  EXPECT_EQ(s->close_reason(), CloseReason::kPeerClosed) << s->close_detail();
}

// A TLS write takes several records at once (tls_socket.cpp); a socket that
// fills in the middle of them must lose, repeat or reorder nothing.
TEST_F(HandshakeTest, TlsFramesQueuedFasterThanThePeerReadsArriveWholeAndInOrder) {
  server_->tls = server_tls(kCerts);
  config_.connection.max_send_bytes = 64u << 20;
  listen();
  ClientHandshake offer;
  offer.tls = client_tls(kCerts + "/dev.crt");
  offer.tls_required = true;
  offer.server_name = "127.0.0.1";
  Handshaken result = dial(offer, 64 << 10);  // a small window: the server's writes back up soon
  ASSERT_TRUE(result.stream.has_value()) << result.error;
  ConnectionConfig config;
  configure(config, result.negotiated);
  config.max_recv_packets = 2;  // the client reads only as the test takes packets
  auto c = Connection::create(std::move(*result.stream), std::move(config));
  c->start();
  connections_.push_back(c);
  auto s = accepted();
  ASSERT_TRUE(s);
  // Sizes across record boundaries: under one record, one and a bit, several.
  const std::size_t sizes[] = {1, 700, 16'384, 16'385, 40'000, 70'001};
  constexpr unsigned kFrames = 900;  // ~21 MB: far more than the two sockets' buffers hold
  FrameHeader header;
  header.kind = MessageKind::kNotification;
  for (unsigned i = 0; i < kFrames; ++i) {
    ASSERT_EQ(s->send(header, testing::incompressible(sizes[i % std::size(sizes)], i)), Connection::SendResult::kQueued)
        << "frame " << i;
  }
  for (unsigned i = 0; i < kFrames; ++i) {
    std::optional<Packet> p;
    ASSERT_TRUE(eventually([&] { return (p = c->try_receive()).has_value(); })) << "frame " << i << " never came";
    ASSERT_EQ(p->payload, testing::incompressible(sizes[i % std::size(sizes)], i)) << "frame " << i;
  }
  EXPECT_FALSE(c->try_receive().has_value());
  EXPECT_FALSE(s->closed()) << s->close_detail();
}

TEST_F(HandshakeTest, WritingTlsToAPeerThatHasGoneIsAnErrorForThatConnectionNotASigpipe) {
  std::signal(SIGPIPE, SIG_DFL);  // as in a C++ process that does not ignore it: the signal would end this test
  server_->tls = server_tls(kCerts);
  listen();
  ClientHandshake offer;
  offer.tls = client_tls(kCerts + "/dev.crt");
  offer.tls_required = true;
  offer.server_name = "127.0.0.1";
  Handshaken result = dial(offer);
  ASSERT_TRUE(result.stream.has_value()) << result.error;
  ConnectionConfig config;
  configure(config, result.negotiated);
  config.max_recv_packets = 1;  // the client stops reading at once: only its writes can find the peer gone
  auto c = Connection::create(std::move(*result.stream), std::move(config));
  c->start();
  connections_.push_back(c);
  auto s = accepted();
  ASSERT_TRUE(s);
  FrameHeader header;
  header.kind = MessageKind::kNotification;
  for (int i = 0; i < 3; ++i) ASSERT_EQ(s->send(header, std::vector<std::uint8_t>{1, 2, 3}), Connection::SendResult::kQueued);
  ASSERT_TRUE(eventually([&] { return c->stats().recv_queued >= 1; }));  // read once, then paused
  s->close();  // the server's socket goes away; the client writes on
  const auto payload = testing::incompressible(64 << 10);
  ASSERT_TRUE(eventually([&] {
    c->send(header, payload);
    return c->closed();
  }));
  EXPECT_EQ(c->close_reason(), CloseReason::kIoError) << c->close_detail();
}

TEST_F(HandshakeTest, APlainClientIsRefusedByATlsListenerAndTold) {
  server_->tls = server_tls(kCerts);
  server_->policy.tls_required = true;
  listen();
  Handshaken result = dial({});
  EXPECT_FALSE(result.stream.has_value());
  EXPECT_EQ(result.error, "refused by the server: server requires TLS");
  ASSERT_TRUE(eventually([&] { return listener_->stats().handshake_failed == 1; }));
  EXPECT_TRUE(logged("failed: refused: server requires TLS"));
}

TEST_F(HandshakeTest, AClientThatOffersTlsAndThenSpeaksPlainTextFailsTheServersTlsHandshake) {
  server_->tls = server_tls(kCerts);
  listen();
  asio::io_context raw_context;
  tcp::socket raw(raw_context);
  raw.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
  wire::Hello hello;
  hello.set_min_version(kProtocolVersion);
  hello.set_max_version(kProtocolVersion);
  hello.set_tls_supported(true);
  FrameEncoder encoder;
  std::vector<std::uint8_t> out;
  append_message(encoder, out, {}, hello);
  asio::write(raw, asio::buffer(out));
  std::uint8_t length[4];
  asio::read(raw, asio::buffer(length));
  std::vector<std::uint8_t> reply(load_u32le(length));
  asio::read(raw, asio::buffer(reply));  // tls = true: TLS starts now, but this client sends a frame
  FrameHeader header;
  header.kind = MessageKind::kNotification;
  out.clear();
  encoder.append(out, header, std::vector<std::uint8_t>(100, 'p'));
  asio::write(raw, asio::buffer(out));
  ASSERT_TRUE(eventually([&] { return listener_->stats().handshake_failed == 1; }));
  EXPECT_TRUE(logged(":" + std::to_string(raw.local_endpoint().port()) + " failed: TLS handshake: "));
  EXPECT_EQ(listener_->try_accept().connection, nullptr);
}

// docs/protocol.md, "Byte by byte", shows these two frames: they are what is sent.
TEST_F(HandshakeTest, TheFramesAreByteForByteThoseOfTheProtocolDocument) {
  const std::vector<std::uint8_t> documented_hello = {
      0x2e, 0x00, 0x00, 0x00, 0x01, 0x01, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
      0x08, 0x01, 0x10, 0x01, 0x1a, 0x02, 0x01, 0x02, 0x20, 0x01, 0x28, 0x01, 0x30, 0x01, 0x42, 0x0e,
      's',  'h',  'a',  'r',  'd',  ' ',  'n',  'e',  't',  'p',  'r',  'o',  't',  'o',  0x48, 0x80,
      0x80, 0x40};
  const std::vector<std::uint8_t> documented_reply = {
      0x25, 0x00, 0x00, 0x00, 0x01, 0x02, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08,
      0x01, 0x18, 0x01, 0x20, 0x01, 0x28, 0x01, 0x30, 0x80, 0x04, 0x38, 0x80, 0x80, 0x40, 0x40, 0x80, 0x80,
      0x80, 0x02, 0x48, 0x90, 0x4e, 0x50, 0x02};
  // The client's Hello, as _net.connect(tls=True) configures it, read by a plain acceptor.
  tcp::acceptor acceptor(context_, {asio::ip::make_address("127.0.0.1"), 0});
  asio::io_context raw_context;
  tcp::socket dialer(context_);
  dialer.connect(acceptor.local_endpoint());
  tcp::socket peer = acceptor.accept();
  auto offer = std::make_shared<ClientHandshake>();
  offer->tls = client_tls(kCerts + "/dev.crt");
  offer->tls_required = true;
  auto handshake = Handshake::connect(std::move(dialer), offer, [](Handshaken) {});
  std::vector<std::uint8_t> hello(documented_hello.size());
  asio::read(peer, asio::buffer(hello));
  EXPECT_EQ(hello, documented_hello);
  handshake->cancel();
  // The documented Hello to a listener with a certificate and the defaults.
  server_->tls = server_tls(kCerts);
  listen();
  tcp::socket raw(raw_context);
  raw.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
  asio::write(raw, asio::buffer(documented_hello));
  std::vector<std::uint8_t> reply(documented_reply.size());
  asio::read(raw, asio::buffer(reply));
  EXPECT_EQ(reply, documented_reply);
}

TEST_F(HandshakeTest, ATlsClientIsNotDowngradedByAPlainServer) {
  listen();
  ClientHandshake offer;
  offer.tls = client_tls(kCerts + "/dev.crt");
  offer.tls_required = true;
  Handshaken result = dial(offer);
  EXPECT_FALSE(result.stream.has_value());
  EXPECT_EQ(result.error, "refused by the server: client requires TLS, server has none");
}

TEST_F(HandshakeTest, ACertificateTheClientCannotVerifyFailsTheHandshakeWithTheReason) {
  struct Case {
    const char* what;
    std::string server_dir, ca;
    const char* reason;
  };
  const Case cases[] = {
      {"another CA", kCerts, kCerts + "-other/dev.crt", "certificate verify failed"},
      {"expired", kCerts + "-expired", kCerts + "-expired/dev.crt", "certificate has expired"},
      {"self-signed, the system's CAs", kCerts, "", "self-signed certificate"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    server_->tls = server_tls(c.server_dir);
    listen();
    ClientHandshake offer;
    offer.tls = client_tls(c.ca);
    offer.tls_required = true;
    offer.server_name = "127.0.0.1";
    Handshaken result = dial(offer);
    EXPECT_FALSE(result.stream.has_value());
    EXPECT_NE(result.error.find(c.reason), std::string::npos) << result.error;
    EXPECT_TRUE(logged("client netproto: handshake with 127.0.0.1:" + std::to_string(listener_->port()) +
                       " failed: TLS handshake"));
    // The server sees the alert and gives up on that connection alone.
    ASSERT_TRUE(eventually([&] { return listener_->stats().open == 0; }));
    EXPECT_EQ(listener_->try_accept().connection, nullptr);
    listener_->close();
  }
}

TEST_F(HandshakeTest, TheServerCertificateMustNameTheHost) {
  server_->tls = server_tls(kCerts);
  listen();
  ClientHandshake offer;
  offer.tls = client_tls(kCerts + "/dev.crt");
  offer.tls_required = true;
  offer.server_name = "shard.example";
  Handshaken result = dial(offer);
  EXPECT_FALSE(result.stream.has_value());
  EXPECT_NE(result.error.find("certificate verify failed"), std::string::npos) << result.error;
}

TEST_F(HandshakeTest, SilentClientsCountAgainstMaxPending) {
  server_->timeout = 60s;
  config_.max_pending = 2;
  listen();
  asio::io_context raw_context;
  std::vector<tcp::socket> silent;
  for (int i = 0; i < 3; ++i) {
    silent.emplace_back(raw_context).connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
  }
  ASSERT_TRUE(eventually([&] { return listener_->stats().refused_pending == 1; }));
  EXPECT_EQ(listener_->stats().open, 2u);
  EXPECT_TRUE(logged("or to finish their handshake"));
}

TEST_F(HandshakeTest, ClosingTheListenerCancelsHandshakesInFlight) {
  server_->timeout = 60s;
  listen();
  asio::io_context raw_context;
  tcp::socket silent(raw_context);
  silent.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
  ASSERT_TRUE(eventually([&] { return listener_->stats().open == 1; }));
  listener_->close();
  char byte;
  boost::system::error_code error;
  silent.read_some(asio::buffer(&byte, 1), error);  // would hang for 60 s if it were left running
  EXPECT_TRUE(error == asio::error::eof || error == asio::error::connection_reset) << error.message();
}

}  // namespace
}  // namespace shard::netproto
