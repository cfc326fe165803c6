#include "trade_log.h"

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "json_text.h"

namespace shard::bots {

TradeLog::TradeLog(const std::string& path) {
  if (path.empty()) return;
  file_ = std::fopen(path.c_str(), "a");
  if (file_ == nullptr) throw std::runtime_error("the trade log " + path + ": " + std::strerror(errno));
}

TradeLog::~TradeLog() {
  if (file_ != nullptr) std::fclose(file_);
}

namespace {

std::string line(const TradeRequest& r, const std::string& outcome_fields) {
  return "{\"character_id\":" + std::to_string(r.character_id) + ",\"request_id\":" + json_string(r.request_id) +
         ",\"side\":\"" + (r.buy ? "buy" : "sell") + "\",\"type_id\":" + std::to_string(r.type_id) +
         ",\"quantity\":" + std::to_string(r.quantity) + ",\"price\":" + std::to_string(r.price) + "," +
         outcome_fields + "}";
}

}  // namespace

void TradeLog::answered(const TradeRequest& request, const TradeAnswer& answer) {
  write_(line(request, "\"outcome\":\"answered\",\"order_id\":" +
                           (answer.order_id ? std::to_string(*answer.order_id) : std::string("null")) +
                           ",\"filled\":" + std::to_string(answer.filled) +
                           ",\"trades\":" + std::to_string(answer.trades)));
}

void TradeLog::refused(const TradeRequest& request, const std::string& error) {
  write_(line(request, "\"outcome\":\"refused\",\"error\":" + json_string(error)));
}

void TradeLog::unknown(const TradeRequest& request, const std::string& error) {
  write_(line(request, "\"outcome\":\"unknown\",\"error\":" + json_string(error)));
}

void TradeLog::write_(const std::string& text) {
  if (file_ == nullptr) return;
  const std::lock_guard<std::mutex> lock(mutex_);
  std::fwrite(text.data(), 1, text.size(), file_);
  std::fputc('\n', file_);
  std::fflush(file_);  // a bots' process killed mid-run still leaves every finished line
}

}  // namespace shard::bots
