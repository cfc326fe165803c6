#include "thread_stats.h"

#include <algorithm>

namespace shard::bots {

void PhaseStats::merge(const PhaseStats& other) {
  ping.merge(other.ping);
  chat.merge(other.chat);
  trade.merge(other.trade);
  move_delivery.merge(other.move_delivery);
  connection.merge(other.connection);
  moves_sent += other.moves_sent;
  move_updates += other.move_updates;
  chat_deliveries += other.chat_deliveries;
  trade_notifications += other.trade_notifications;
  ping_series.insert(ping_series.end(), other.ping_series.begin(), other.ping_series.end());
  // The earliest samples, as one process appending in time order would keep.
  std::sort(ping_series.begin(), ping_series.end());
  if (ping_series.size() > kSeriesCap) ping_series.resize(kSeriesCap);
}

}  // namespace shard::bots
