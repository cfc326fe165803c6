// The trade log's lines are what market_audit.py reads (trade_log.h).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

#include "trade_log.h"

namespace shard::bots {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(TradeLog, EachOutcomeIsOneJsonLineAppended) {
  const std::string path = ::testing::TempDir() + "trades-" + std::to_string(::getpid()) + ".jsonl";
  std::remove(path.c_str());
  const TradeRequest buy{42, "00ab", true, 34, 3, 510};
  const TradeRequest sell{43, "id \"quoted\"", false, 34, 1, 495};
  {
    TradeLog log(path);
    log.answered(buy, TradeAnswer{std::nullopt, 2, 1});
    log.answered(sell, TradeAnswer{7, 0, 0});
  }
  {
    TradeLog log(path);  // a second run appends
    log.refused(buy, "RpcError: APPLICATION InsufficientFunds: no money");
    log.unknown(sell, "CallTimeout: market.place: no answer within 30 s");
  }
  EXPECT_EQ(read_all(path),
            "{\"character_id\":42,\"request_id\":\"00ab\",\"side\":\"buy\",\"type_id\":34,\"quantity\":3,\"price\":510,"
            "\"outcome\":\"answered\",\"order_id\":null,\"filled\":2,\"trades\":1}\n"
            "{\"character_id\":43,\"request_id\":\"id \\\"quoted\\\"\",\"side\":\"sell\",\"type_id\":34,\"quantity\":1,"
            "\"price\":495,\"outcome\":\"answered\",\"order_id\":7,\"filled\":0,\"trades\":0}\n"
            "{\"character_id\":42,\"request_id\":\"00ab\",\"side\":\"buy\",\"type_id\":34,\"quantity\":3,\"price\":510,"
            "\"outcome\":\"refused\",\"error\":\"RpcError: APPLICATION InsufficientFunds: no money\"}\n"
            "{\"character_id\":43,\"request_id\":\"id \\\"quoted\\\"\",\"side\":\"sell\",\"type_id\":34,\"quantity\":1,"
            "\"price\":495,\"outcome\":\"unknown\",\"error\":\"CallTimeout: market.place: no answer within 30 s\"}\n");
  std::remove(path.c_str());
}

TEST(TradeLog, NoPathLogsNothingAndABadOneSaysWhy) {
  TradeLog nowhere("");
  nowhere.answered(TradeRequest{}, TradeAnswer{});  // no file, no crash
  try {
    TradeLog log("/nonexistent-dir/trades.jsonl");
    FAIL() << "opened a file in a directory that does not exist";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "the trade log /nonexistent-dir/trades.jsonl: No such file or directory");
  }
}

}  // namespace
}  // namespace shard::bots
