#pragma once
// shard-bots' command line (Boost.Program_options), named as swarm.py's
// options, which passes its own through (tools/client/README.md).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace shard::bots {

struct BotOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 26000;
  std::string ca;      // the CA file the proxy's certificate must chain to
  bool plain = false;  // no TLS
  std::string prefix = "bot";
  int bots = 10;
  int first = 0;  // bot i is account PREFIX(first + i)
  std::string password = "bot-password";
  double ramp = 0;  // each bot starts at uniform[0, ramp) s
  int sources = 1;  // loopback source addresses 127.1.x.y
  double move_rate = 0, ping_rate = 0, chat_rate = 0, trade_rate = 0;  // per bot per second
  // The items traded, types trade_type .. trade_type + trade_types - 1 (a
  // market's many books), around that price (hundredths of ISK).
  std::int64_t trade_type = 34, trade_types = 1, trade_price = 500;
  std::string trade_log;  // where the trades' outcomes go (trade_log.h); "" for nowhere
  double speed = 20;
  double timeout = 30;  // per call and per connection, s
  int threads = 1;
};

// The options, or nullopt with *error set ("--mix chat: ..."); *help set (and nullopt) for --help, with the usage in *error.
std::optional<BotOptions> parse_options(const std::vector<std::string>& args, std::string* error, bool* help);

// "move=1,ping=0.2,trade=0.01" into the rates; false with *error for anything else.
bool parse_mix(const std::string& text, BotOptions& options, std::string* error);

// Bot `index`'s source address ("" for the system's choice), as swarm.py's.
std::string source_address(const BotOptions& options, int index);

}  // namespace shard::bots
