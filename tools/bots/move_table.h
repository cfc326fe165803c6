#pragma once
// Which sequence each bot's ship last sent, and when: a received movement
// update of that ship with that sequence is delivered after now - then
// (move_delivery). Bots on every IO thread write and read it, so it is one
// 64-bit atomic per bot (sequence and time packed: no torn pair), and the
// ship -> bot map, filled once per bot at login, is an open-addressing table
// of atomics read without a lock (every movement update looks a ship up: a
// shared lock and a std::unordered_map there were ~1 % of the bots' CPU).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

namespace shard::bots {

class MoveTable {
 public:
  using Clock = std::chrono::steady_clock;

  explicit MoveTable(std::size_t bots);

  // At login, on the bot's thread: `bot` drives `ship`.
  void add_ship(std::uint64_t ship, std::size_t bot);
  // Bot `bot` sent `sequence` at `when`.
  void sent(std::size_t bot, std::uint32_t sequence, Clock::time_point when);
  // The seconds from that send to `now` if `sequence` is the last one sent for `ship`.
  std::optional<double> delivered(std::uint64_t ship, std::uint32_t sequence, Clock::time_point now) const;

 private:
  // Low 24 bits: the sequence (mod 2^24: at 1 Hz, half a year); high 40: the
  // send time in microseconds since the table was made (12 days). 0: none yet.
  static constexpr int kSequenceBits = 24;
  static constexpr std::uint64_t kSequenceMask = (std::uint64_t{1} << kSequenceBits) - 1;
  Clock::time_point epoch_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> last_;
  std::size_t size_;
  // Ship ids (0: a free slot) and their bots, linear probing; at least twice
  // as many slots as bots, so a probe ends at a free slot. Writers take the mutex.
  std::size_t mask_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> ships_;
  std::unique_ptr<std::atomic<std::uint32_t>[]> bots_;
  std::mutex add_mutex_;
};

}  // namespace shard::bots
