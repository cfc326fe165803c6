#include "move_table.h"

#include <mutex>

namespace shard::bots {

MoveTable::MoveTable(std::size_t bots)
    : epoch_(Clock::now()), last_(new std::atomic<std::uint64_t>[bots]), size_(bots) {
  for (std::size_t i = 0; i < bots; ++i) last_[i].store(0, std::memory_order_relaxed);
}

void MoveTable::add_ship(std::uint64_t ship, std::size_t bot) {
  std::unique_lock lock(ships_mutex_);
  ships_[ship] = bot;
}

void MoveTable::sent(std::size_t bot, std::uint32_t sequence, Clock::time_point when) {
  if (bot >= size_) return;
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(when - epoch_).count();
  last_[bot].store((static_cast<std::uint64_t>(us) << kSequenceBits) | (sequence & kSequenceMask),
                   std::memory_order_relaxed);
}

std::optional<double> MoveTable::delivered(std::uint64_t ship, std::uint32_t sequence, Clock::time_point now) const {
  std::size_t bot;
  {
    std::shared_lock lock(ships_mutex_);
    const auto it = ships_.find(ship);
    if (it == ships_.end()) return std::nullopt;
    bot = it->second;
  }
  const std::uint64_t last = last_[bot].load(std::memory_order_relaxed);
  if (last == 0 || (last & kSequenceMask) != (sequence & kSequenceMask)) return std::nullopt;
  const auto sent_us = static_cast<std::int64_t>(last >> kSequenceBits);
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(now - epoch_).count();
  return static_cast<double>(now_us - sent_us) / 1e6;
}

}  // namespace shard::bots
