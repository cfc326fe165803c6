#include "move_table.h"

#include <bit>

namespace shard::bots {

namespace {

std::size_t slot_of(std::uint64_t ship, std::size_t mask) {
  return static_cast<std::size_t>(ship * 0x9E3779B97F4A7C15ull >> 20) & mask;  // Fibonacci hashing
}

}  // namespace

MoveTable::MoveTable(std::size_t bots)
    : epoch_(Clock::now()),
      last_(new std::atomic<std::uint64_t>[bots]),
      size_(bots),
      mask_(std::bit_ceil(2 * bots + 2) - 1),
      ships_(new std::atomic<std::uint64_t>[mask_ + 1]),
      bots_(new std::atomic<std::uint32_t>[mask_ + 1]) {
  for (std::size_t i = 0; i < bots; ++i) last_[i].store(0, std::memory_order_relaxed);
  for (std::size_t i = 0; i <= mask_; ++i) {
    ships_[i].store(0, std::memory_order_relaxed);
    bots_[i].store(0, std::memory_order_relaxed);
  }
}

void MoveTable::add_ship(std::uint64_t ship, std::size_t bot) {
  if (ship == 0 || bot >= size_) return;
  std::lock_guard lock(add_mutex_);
  for (std::size_t i = slot_of(ship, mask_);; i = (i + 1) & mask_) {
    const std::uint64_t there = ships_[i].load(std::memory_order_relaxed);
    if (there == ship || there == 0) {
      bots_[i].store(static_cast<std::uint32_t>(bot), std::memory_order_relaxed);
      ships_[i].store(ship, std::memory_order_release);  // the bot is there before a reader sees the ship
      return;
    }
  }
}

void MoveTable::sent(std::size_t bot, std::uint32_t sequence, Clock::time_point when) {
  if (bot >= size_) return;
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(when - epoch_).count();
  last_[bot].store((static_cast<std::uint64_t>(us) << kSequenceBits) | (sequence & kSequenceMask),
                   std::memory_order_relaxed);
}

std::optional<double> MoveTable::delivered(std::uint64_t ship, std::uint32_t sequence, Clock::time_point now) const {
  if (ship == 0) return std::nullopt;
  std::size_t bot;
  for (std::size_t i = slot_of(ship, mask_);; i = (i + 1) & mask_) {
    const std::uint64_t there = ships_[i].load(std::memory_order_acquire);
    if (there == 0) return std::nullopt;
    if (there == ship) {
      bot = bots_[i].load(std::memory_order_relaxed);
      break;
    }
  }
  const std::uint64_t last = last_[bot].load(std::memory_order_relaxed);
  if (last == 0 || (last & kSequenceMask) != (sequence & kSequenceMask)) return std::nullopt;
  const auto sent_us = static_cast<std::int64_t>(last >> kSequenceBits);
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(now - epoch_).count();
  return static_cast<double>(now_us - sent_us) / 1e6;
}

}  // namespace shard::bots
