#pragma once
// The trades the bots started, one JSON object per line, for the market
// audit (scripts/market_audit.py) to hold against the database after a run:
//
//   {"character_id":N,"request_id":"...","side":"buy","type_id":34,"quantity":3,"price":510,
//    "outcome":"answered","order_id":N|null,"filled":N,"trades":N}
//   {... "outcome":"refused","error":"..."}   the server answered an error: nothing may be stored
//   {... "outcome":"unknown","error":"..."}   no answer (timeout, lost connection, the run ended)
//
// swarm.py's Python bots write the same lines. Trades are rare next to
// moves and pings, so the bots' threads share one file under a mutex.

#include <cstdint>
#include <cstdio>
#include <mutex>
#include <optional>
#include <string>

namespace shard::bots {

struct TradeRequest {
  std::int64_t character_id = 0;
  std::string request_id;
  bool buy = true;
  std::int64_t type_id = 0, quantity = 0, price = 0;
};

struct TradeAnswer {
  std::optional<std::int64_t> order_id;  // nullopt: nothing rests
  std::int64_t filled = 0;
  std::int64_t trades = 0;
};

class TradeLog {
 public:
  // Opens `path` for appending; an empty path logs nothing. Throws
  // std::runtime_error with the path and the reason when it cannot be opened.
  explicit TradeLog(const std::string& path);
  ~TradeLog();
  TradeLog(const TradeLog&) = delete;
  TradeLog& operator=(const TradeLog&) = delete;

  void answered(const TradeRequest& request, const TradeAnswer& answer);
  void refused(const TradeRequest& request, const std::string& error);
  void unknown(const TradeRequest& request, const std::string& error);

 private:
  void write_(const std::string& line);

  std::FILE* file_ = nullptr;
  std::mutex mutex_;
};

}  // namespace shard::bots
