// shard-bots' command line: swarm.py's names, and clear errors for what the
// native bots cannot do.
#include <gtest/gtest.h>

#include "bot_options.h"

namespace shard::bots {
namespace {

std::optional<BotOptions> parse(std::vector<std::string> args, std::string* error) {
  bool help = false;
  return parse_options(args, error, &help);
}

TEST(BotOptions, SwarmsNamesAreParsed) {
  std::string error;
  const auto o = parse({"--host", "127.0.0.5", "--port", "26100", "--ca", "/tmp/ca.crt", "--bots", "5000", "--first",
                        "10", "--prefix", "benchbot", "--password", "pw", "--ramp", "50", "--sources", "25", "--mix",
                        "move=1,ping=0.2,trade=0.01", "--speed", "30", "--timeout", "60", "--threads", "2", "--trade-type",
                        "35", "--trade-types", "20", "--trade-price", "700", "--trade-log", "/tmp/trades.jsonl"},
                       &error);
  ASSERT_TRUE(o) << error;
  EXPECT_EQ(o->host, "127.0.0.5");
  EXPECT_EQ(o->port, 26100);
  EXPECT_EQ(o->bots, 5000);
  EXPECT_EQ(o->first, 10);
  EXPECT_DOUBLE_EQ(o->move_rate, 1.0);
  EXPECT_DOUBLE_EQ(o->ping_rate, 0.2);
  EXPECT_DOUBLE_EQ(o->trade_rate, 0.01);
  EXPECT_EQ(o->trade_type, 35);
  EXPECT_EQ(o->trade_types, 20);
  EXPECT_EQ(o->trade_price, 700);
  EXPECT_EQ(o->trade_log, "/tmp/trades.jsonl");
  EXPECT_EQ(o->threads, 2);
  EXPECT_EQ(source_address(*o, 0), "127.1.0.1");
  EXPECT_EQ(source_address(*o, 24), "127.1.0.25");
  EXPECT_EQ(source_address(*o, 25), "127.1.0.1");
}

TEST(BotOptions, SourcesSpreadAsSwarmPyDoes) {
  BotOptions o;
  EXPECT_EQ(source_address(o, 7), "");  // one source: the system's choice
  o.sources = 300;
  EXPECT_EQ(source_address(o, 251), "127.1.1.2");
}

TEST(BotOptions, AnUnknownOperationIsRefusedClearly) {
  std::string error;
  EXPECT_FALSE(parse({"--plain", "--mix", "move=1,dance=0.05"}, &error));
  EXPECT_EQ(error, "--mix dance: unknown operation (known: move, ping, chat, trade)");
  ASSERT_TRUE(parse({"--plain", "--mix", "move=1,chat=0.05"}, &error)) << error;
}

TEST(BotOptions, BadValuesAreRefusedWithTheirReason) {
  std::string error;
  EXPECT_FALSE(parse({"--plain", "--mix", "ping=fast"}, &error));
  EXPECT_EQ(error, "--mix ping: the rate 'fast' is not a number");
  EXPECT_FALSE(parse({"--plain", "--mix", "ping=101"}, &error));
  EXPECT_EQ(error, "--mix ping: a rate per bot per second in [0, 100]");
  EXPECT_FALSE(parse({"--plain", "--trade-price", "0"}, &error));
  EXPECT_EQ(error, "--trade-price must be positive");
  EXPECT_FALSE(parse({"--plain", "--bots", "0"}, &error));
  EXPECT_EQ(error, "--bots must be at least 1");
  EXPECT_FALSE(parse({"--plain", "--threads", "0"}, &error));
  EXPECT_EQ(error, "--threads must be in [1, 256]");
  EXPECT_FALSE(parse({"--bots", "3"}, &error));
  EXPECT_EQ(error, "give --ca FILE (TLS) or --plain");
  EXPECT_FALSE(parse({"--plain", "--bots", "many"}, &error));
  EXPECT_NE(error.find("bots"), std::string::npos) << error;
  EXPECT_FALSE(parse({"--plain", "--nonsense"}, &error));
  EXPECT_NE(error.find("nonsense"), std::string::npos) << error;
}

}  // namespace
}  // namespace shard::bots
