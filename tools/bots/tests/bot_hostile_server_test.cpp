// A bot against a hostile server (a real netproto listener on 127.0.0.1,
// plain TCP): after the login, a payload that does not parse, or a kind no
// client receives, closes that bot's connection with the reason and counts a
// failed login; a refusal that asks for a wait no number can hold is a failed
// login too. The program goes on.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "bot.h"
#include "shard/netproto/listener.h"
#include "shard/netproto/message_codec.h"

namespace shard::bots {
namespace {

namespace asio = boost::asio;
namespace net = shard::netproto;

enum class Answer { kGarbageReply, kMisplacedKind, kBusyForever, kBusyOnceThenGarbage };

// A login storm's refusal whose wait overflows any number (400 digits).
const std::string kBusyForever = "busy with other logins; retry in " + std::string(400, '9') + " s";

// The server's answer to the bot's first call (characters.list), after an
// accepted login; or (kBusyForever) to the login itself.
std::shared_ptr<net::NativeHandlers> hostile_server(Answer answer) {
  auto handlers = std::make_shared<net::NativeHandlers>();
  auto logins = std::make_shared<std::atomic<int>>(0);
  handlers->set(net::MessageKind::kLogin, [answer, logins](net::Connection& c, const net::Frame&) {
    wire::LoginReply reply;
    if (answer == Answer::kBusyForever) {
      reply.set_reason(kBusyForever);
    } else if (answer == Answer::kBusyOnceThenGarbage && logins->fetch_add(1) == 0) {
      reply.set_reason("the server is busy with other logins; retry in 0 s");
    } else {
      reply.set_ok(true);
    }
    reply.set_session_id(1);
    net::FrameHeader header;
    header.kind = net::MessageKind::kLoginReply;
    const std::string bytes = reply.SerializeAsString();
    c.send(header, std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
  });
  handlers->set(net::MessageKind::kRpcCall, [answer](net::Connection& c, const net::Frame&) {
    static const std::uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    net::FrameHeader header;
    header.kind = answer == Answer::kMisplacedKind ? net::MessageKind::kRpcCall : net::MessageKind::kRpcReply;
    c.send(header, garbage);
  });
  return handlers;
}

// The bot's login histogram (swarm_stats' raw form) and its retries'.
struct LoginErrors {
  std::string login, retries;
};

LoginErrors login_errors_against(Answer answer) {
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
  std::promise<LoginErrors> result;
  asio::post(context, [&] {
    bot->stop();
    result.set_value({stats.login.to_json(), stats.login_retry.to_json()});
  });
  const LoginErrors errors = result.get_future().get();
  EXPECT_EQ(swarm.settled.load(), 1);
  EXPECT_EQ(swarm.connected.load(), 0);
  listener->close();
  work.reset();
  context.stop();
  io.join();
  return errors;
}

TEST(BotAgainstAHostileServer, AnAnswerThatDoesNotParseClosesTheConnectionAndFailsTheLogin) {
  const std::string json = login_errors_against(Answer::kGarbageReply).login;
  EXPECT_NE(json.find("\"errors\":1,"), std::string::npos) << json;
  EXPECT_NE(json.find("Disconnected: the server closed the connection: protocol error: a bad message: "
                      "netproto bad_payload: payload does not parse as shard.wire.RpcReply"),
            std::string::npos)
      << json;
}

TEST(BotAgainstAHostileServer, AKindNoClientReceivesClosesTheConnectionAndFailsTheLogin) {
  const std::string json = login_errors_against(Answer::kMisplacedKind).login;
  EXPECT_NE(json.find("\"errors\":1,"), std::string::npos) << json;
  EXPECT_NE(json.find("protocol error: a message of kind 6, which has no place on a client connection"),
            std::string::npos)
      << json;
}

TEST(BotAgainstAHostileServer, ARefusalAskingForAWaitNoNumberHoldsFailsTheLogin) {
  const std::string json = login_errors_against(Answer::kBusyForever).login;
  EXPECT_NE(json.find("\"errors\":1,"), std::string::npos) << json;
  EXPECT_NE(json.find("LoginFailed: login refused: busy with other logins; retry in 999"), std::string::npos) << json;
}

TEST(BotAgainstAHostileServer, ABusyRefusalIsRetriedAfterTheWaitItAsksFor) {
  const LoginErrors errors = login_errors_against(Answer::kBusyOnceThenGarbage);
  EXPECT_NE(errors.retries.find("\"errors\":1,"), std::string::npos) << errors.retries;
  EXPECT_NE(errors.retries.find("LoginFailed: login refused: the server is busy with other logins; retry in 0 s"),
            std::string::npos)
      << errors.retries;
  // The second attempt logged in, and then met the garbage answer.
  EXPECT_NE(errors.login.find("payload does not parse as shard.wire.RpcReply"), std::string::npos) << errors.login;
}

}  // namespace
}  // namespace shard::bots
