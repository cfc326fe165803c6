// A bot against a server that breaks the protocol after the login (a real
// netproto listener on 127.0.0.1, plain TCP): a payload that does not parse,
// or a kind no client receives, closes that bot's connection with the reason
// and counts a failed login; the program goes on.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "bot.h"
#include "shard/netproto/listener.h"
#include "shard/netproto/message_codec.h"

namespace shard::bots {
namespace {

namespace asio = boost::asio;
namespace net = shard::netproto;

enum class Answer { kGarbageReply, kMisplacedKind };

// The server's answer to the bot's first call (characters.list), after an accepted login.
std::shared_ptr<net::NativeHandlers> hostile_server(Answer answer) {
  auto handlers = std::make_shared<net::NativeHandlers>();
  handlers->set(net::MessageKind::kLogin, [](net::Connection& c, const net::Frame&) {
    wire::LoginReply reply;
    reply.set_ok(true);
    reply.set_session_id(1);
    net::FrameHeader header;
    header.kind = net::MessageKind::kLoginReply;
    const std::string bytes = reply.SerializeAsString();
    c.send(header, std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  });
  handlers->set(net::MessageKind::kRpcCall, [answer](net::Connection& c, const net::Frame&) {
    static const std::uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    net::FrameHeader header;
    header.kind = answer == Answer::kGarbageReply ? net::MessageKind::kRpcReply : net::MessageKind::kRpcCall;
    c.send(header, garbage);
  });
  return handlers;
}

std::string login_errors_against(Answer answer) {
  asio::io_context context;
  auto work = asio::make_work_guard(context);
  std::thread io([&] { context.run(); });
  net::ListenerConfig config;
  auto handshake = std::make_shared<net::ServerHandshake>();
  handshake->policy.codecs = {net::Codec::kZlib};
  config.handshake = handshake;
  std::error_code error;
  auto listener =
      net::Listener::create(context, {asio::ip::make_address("127.0.0.1"), 0}, config, hostile_server(answer), error);
  EXPECT_FALSE(error) << error.message();
  listener->start();

  BotOptions options;
  options.plain = true;
  options.port = listener->port();
  options.bots = 1;
  options.timeout = 10;
  auto client = std::make_shared<net::ClientHandshake>();
  client->codecs = {net::Codec::kZlib};
  MoveTable moves(1);
  TradeLog trades("");
  Swarm swarm{options, client, moves, trades, 1};
  ThreadStats stats;
  auto bot = std::make_unique<Bot>(context, swarm, stats, 0);
  asio::post(context, [&] { bot->start(); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (swarm.settled.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    while (listener->try_accept().connection) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::promise<std::string> result;
  asio::post(context, [&] {
    bot->stop();
    result.set_value(stats.login.to_json());
  });
  const std::string json = result.get_future().get();
  EXPECT_EQ(swarm.settled.load(), 1);
  EXPECT_EQ(swarm.connected.load(), 0);
  listener->close();
  work.reset();
  context.stop();
  io.join();
  return json;
}

TEST(BotAgainstAHostileServer, AnAnswerThatDoesNotParseClosesTheConnectionAndFailsTheLogin) {
  const std::string json = login_errors_against(Answer::kGarbageReply);
  EXPECT_NE(json.find("\"errors\":1,"), std::string::npos) << json;
  EXPECT_NE(json.find("Disconnected: the server closed the connection: protocol error: a bad message: "
                      "netproto bad_payload: payload does not parse as shard.wire.RpcReply"),
            std::string::npos)
      << json;
}

TEST(BotAgainstAHostileServer, AKindNoClientReceivesClosesTheConnectionAndFailsTheLogin) {
  const std::string json = login_errors_against(Answer::kMisplacedKind);
  EXPECT_NE(json.find("\"errors\":1,"), std::string::npos) << json;
  EXPECT_NE(json.find("protocol error: a message of kind 6, which has no place on a client connection"),
            std::string::npos)
      << json;
}

}  // namespace
}  // namespace shard::bots
