#pragma once
// One IO thread's plain TCP connections waiting to read, in an edge-triggered
// epoll set of their own that Asio watches as one descriptor.
//
// Why: Asio 1.74's reactor starts every async_read_some with an immediate
// recv(); re-armed right after a packet of a request/response peer, it finds
// nothing (EAGAIN): one wasted system call per packet (docs/benchmarks.md,
// "Framed echo"). Its only other way to wait, async_wait, costs an epoll_ctl
// per wait. Here a socket is read only once epoll says it has bytes, and the
// set costs one epoll_wait and one re-arm per batch of ready sockets, however
// many are in it.
//
// IO thread only (the io_context this service belongs to, run by one thread).
// A registered connection is kept alive by the set until removed.

#include <utility>  // before Asio: Boost 1.74's Asio with GCC 12 in C++20 needs it

#include <boost/asio.hpp>

#include <cstdint>
#include <memory>
#include <system_error>
#include <vector>

namespace shard::netproto {

class Connection;

class ReadPoller final : public boost::asio::execution_context::service {
 public:
  using key_type = ReadPoller;
  static inline boost::asio::execution_context::id id;

  explicit ReadPoller(boost::asio::execution_context& context);
  ~ReadPoller() override;

  // Watches `fd` until remove(); `connection->on_readable_()` runs in the
  // batch after bytes arrive (or its end, or an error), and at once if
  // it has bytes when added; it reads until a short read. `slot`:
  // where the set keeps it, for remove().
  std::error_code add(int fd, std::shared_ptr<Connection> connection, std::uint32_t& slot);
  // Stops watching; a no-op for a connection that is not in the set at `slot`.
  void remove(int fd, Connection* connection, std::uint32_t slot);

 private:
  void shutdown() override;
  void arm_();
  void poll_();
  // Connections in the set: the slots not free.
  std::size_t size_() const { return readers_.size() - free_.size(); }

  // A ready socket's event carries its slot and the slot's generation, so a
  // connection is found without a lookup (a hash map's node was a cache miss
  // per ready socket at 1,000 connections), and an event for one removed
  // earlier in the batch (its slot empty, or reused) is told apart.
  struct Reader {
    std::shared_ptr<Connection> connection;  // null: a free slot
    std::uint32_t generation = 0;            // bumped as the slot is freed
  };

  int epoll_ = -1;
  boost::asio::posix::stream_descriptor set_;  // epoll_, as Asio sees it
  std::vector<Reader> readers_;
  std::vector<std::uint32_t> free_;  // free slots of readers_
  // Removed while a batch runs (the one reading, perhaps): released after it.
  std::vector<std::shared_ptr<Connection>> retired_;
  bool polling_ = false;
  bool waiting_ = false;
};

}  // namespace shard::netproto
