#pragma once
// C++ handlers for kinds of packet that never reach Python (the native movement
// path): a connection whose frame's kind has a handler calls it on the IO
// thread, with the frame still in the decoder's buffer, and does not queue it.
// Built before the connections that use it and then read-only: no lock on the
// IO threads' path. A handler must not block; it may send on the connection.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>

#include "shard/netproto/frame_decoder.h"
#include "shard/netproto/frame_header.h"

namespace shard::netproto {

class Connection;

class NativeHandlers final {
 public:
  using Handler = std::function<void(Connection&, const Frame&)>;

  void set(MessageKind kind, Handler handler) { handlers_[static_cast<std::size_t>(kind)] = std::move(handler); }
  const Handler* find(MessageKind kind) const noexcept {
    const Handler& h = handlers_[static_cast<std::size_t>(kind)];
    return h ? &h : nullptr;
  }
  // Packets that took the native path (counted by the connections).
  void count() const noexcept { handled_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t handled() const noexcept { return handled_.load(std::memory_order_relaxed); }

 private:
  std::array<Handler, kMaxMessageKind + 1> handlers_;
  mutable std::atomic<std::uint64_t> handled_{0};
};

}  // namespace shard::netproto
