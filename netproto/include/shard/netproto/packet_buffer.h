#pragma once
// Packets laid end to end in one byte buffer, with a table of where each one
// starts: the unit of a connection's receive queue (connection.h), as one
// byte buffer is the unit of its send queue. The IO thread appends a read's
// packets to one and hands it over whole; the consumer takes a whole one and
// reads its packets in order. Buffers are swapped between the two sides, not
// freed, so once they have grown a received packet costs no allocation, and
// no buffer is freed on another thread than the one that made it (glibc's
// cross-thread free was a visible cost per packet when each one had its own
// vector).
//
// Not thread-safe: the connection's locks say who holds which buffer.

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "shard/netproto/frame_header.h"

namespace shard::netproto {

class PacketBuffer final {
 public:
  struct Entry {
    FrameHeader header;
    std::size_t offset = 0;  // of the payload in the byte buffer
    std::size_t size = 0;
  };

  void append(const FrameHeader& header, std::span<const std::uint8_t> payload) {
    entries_.push_back({header, bytes_.size(), payload.size()});
    bytes_.insert(bytes_.end(), payload.begin(), payload.end());
  }
  // `other`'s packets after these.
  void append(const PacketBuffer& other) {
    const std::size_t base = bytes_.size();
    bytes_.insert(bytes_.end(), other.bytes_.begin(), other.bytes_.end());
    for (Entry entry : other.entries_) {
      entry.offset += base;
      entries_.push_back(entry);
    }
  }

  bool empty() const noexcept { return entries_.empty(); }
  std::size_t packets() const noexcept { return entries_.size(); }
  std::size_t bytes() const noexcept { return bytes_.size(); }  // payload bytes
  const Entry& entry(std::size_t i) const noexcept { return entries_[i]; }
  // Valid until the next append, clear, trim or swap.
  std::span<const std::uint8_t> payload(const Entry& entry) const noexcept {
    return {bytes_.data() + entry.offset, entry.size};
  }

  // Empties it, capacity kept.
  void clear() noexcept {
    entries_.clear();
    bytes_.clear();
  }
  // Frees what a burst grew past `keep_bytes` / `keep_packets` (an idle
  // connection does not keep a burst's buffer). Call when empty.
  void trim(std::size_t keep_bytes, std::size_t keep_packets) {
    if (bytes_.capacity() > keep_bytes) std::vector<std::uint8_t>().swap(bytes_);
    if (entries_.capacity() > keep_packets) std::vector<Entry>().swap(entries_);
  }
  void swap(PacketBuffer& other) noexcept {
    bytes_.swap(other.bytes_);
    entries_.swap(other.entries_);
  }

 private:
  std::vector<std::uint8_t> bytes_;
  std::vector<Entry> entries_;
};

}  // namespace shard::netproto
