#include "bot_options.h"

#include <boost/program_options.hpp>

#include <sstream>

namespace shard::bots {

namespace po = boost::program_options;

bool parse_mix(const std::string& text, BotOptions& options, std::string* error) {
  options.move_rate = options.ping_rate = options.chat_rate = options.trade_rate = 0;
  std::istringstream items(text);
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    const std::string op = item.substr(0, eq);
    const std::string rate_text = eq == std::string::npos ? "" : item.substr(eq + 1);
    double* target = op == "move" ? &options.move_rate
                     : op == "ping" ? &options.ping_rate
                     : op == "chat" ? &options.chat_rate
                     : op == "trade" ? &options.trade_rate
                                     : nullptr;
    if (target == nullptr) {
      *error = "--mix " + op + ": unknown operation (known: move, ping, chat, trade)";
      return false;
    }
    double rate = 0;
    std::size_t used = 0;
    try {
      rate = std::stod(rate_text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != rate_text.size()) {
      *error = "--mix " + op + ": the rate '" + rate_text + "' is not a number";
      return false;
    }
    if (!(rate >= 0 && rate <= 100)) {
      *error = "--mix " + op + ": a rate per bot per second in [0, 100]";
      return false;
    }
    *target = rate;
  }
  return true;
}

std::optional<BotOptions> parse_options(const std::vector<std::string>& args, std::string* error, bool* help) {
  BotOptions o;
  std::string mix = "move=1,ping=0.2";
  int port = o.port;
  po::options_description described("shard-bots: native game-client bots driven by swarm.py --native");
  described.add_options()
      ("help", "this text")
      ("host", po::value(&o.host)->default_value(o.host), "the proxy's client address")
      ("port", po::value(&port)->default_value(port), "the proxy's client port")
      ("ca", po::value(&o.ca), "the CA file the proxy's certificate must chain to (TLS)")
      ("plain", po::bool_switch(&o.plain), "no TLS")
      ("prefix", po::value(&o.prefix)->default_value(o.prefix), "account name prefix")
      ("bots", po::value(&o.bots)->default_value(o.bots), "how many bots")
      ("first", po::value(&o.first)->default_value(o.first), "the first bot's index")
      ("password", po::value(&o.password)->default_value(o.password), "the bots' password")
      ("ramp", po::value(&o.ramp)->default_value(o.ramp), "each bot starts at uniform[0, RAMP) s")
      ("sources", po::value(&o.sources)->default_value(o.sources), "loopback source addresses 127.1.x.y")
      ("mix", po::value(&mix)->default_value(mix), "move=R,ping=R,chat=R,trade=R per bot per second")
      ("trade-type", po::value(&o.trade_type)->default_value(o.trade_type), "the (first) item type the bots trade")
      ("trade-types", po::value(&o.trade_types)->default_value(o.trade_types),
       "how many item types, from --trade-type on, each trade picking one")
      ("trade-price", po::value(&o.trade_price)->default_value(o.trade_price),
       "around this price (+-10%), hundredths of ISK")
      ("trade-log", po::value(&o.trade_log), "append each trade's outcome to this file (JSON lines, trade_log.h)")
      ("speed", po::value(&o.speed)->default_value(o.speed), "ship speed, m/s")
      ("timeout", po::value(&o.timeout)->default_value(o.timeout), "seconds per call and per connection")
      ("threads", po::value(&o.threads)->default_value(o.threads), "IO threads");
  *help = false;
  error->clear();
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(described).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    *error = e.what();
    return std::nullopt;
  }
  if (vm.count("help")) {
    std::ostringstream usage;
    usage << described;
    *error = usage.str();
    *help = true;
    return std::nullopt;
  }
  if (!parse_mix(mix, o, error)) return std::nullopt;
  if (port < 1 || port > 65535) *error = "--port must be in [1, 65535]";
  else if (o.bots < 1) *error = "--bots must be at least 1";
  else if (o.first < 0) *error = "--first must not be negative";
  else if (o.sources < 1 || o.sources > 250 * 250) *error = "--sources must be in [1, 62500]";
  else if (o.threads < 1 || o.threads > 256) *error = "--threads must be in [1, 256]";
  else if (!(o.timeout > 0)) *error = "--timeout must be positive";
  else if (!(o.ramp >= 0)) *error = "--ramp must not be negative";
  else if (!(o.speed >= 0)) *error = "--speed must not be negative";
  else if (o.trade_type < 1) *error = "--trade-type must be positive";
  else if (o.trade_types < 1 || o.trade_types > 100000) *error = "--trade-types must be in [1, 100000]";
  else if (o.trade_price < 1) *error = "--trade-price must be positive";
  else if (!o.plain && o.ca.empty()) *error = "give --ca FILE (TLS) or --plain";
  if (!error->empty()) return std::nullopt;
  o.port = static_cast<std::uint16_t>(port);
  return o;
}

std::string source_address(const BotOptions& options, int index) {
  if (options.sources <= 1) return {};
  const int k = index % options.sources;
  return "127.1." + std::to_string(k / 250) + "." + std::to_string(k % 250 + 1);
}

}  // namespace shard::bots
