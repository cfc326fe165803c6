#pragma once
// A listening socket on an Asio io_context: accepts on its IO thread (each
// accepted socket onto the IO thread config.connection_context picks), refuses
// (and logs) a connection from an address that already has
// max_per_address open ones, runs the handshake (handshake.h) on the others
// and wraps those that pass it in started Connections queued for the
// consumer, like a connection queues packets. A failed handshake is logged
// and counted; the consumer never sees that connection.
//
// Thread-safe: every public member may be called from any thread.

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

#include "shard/netproto/connection.h"
#include "shard/netproto/handshake.h"

namespace shard::netproto {

struct ListenerConfig {
  ConnectionConfig connection;        // for each accepted connection
  // The handshake each accepted connection runs first; its result sets the
  // connection's codec and limits. Null: none, frames from the first byte
  // (netproto's own tests of the framing).
  std::shared_ptr<const ServerHandshake> handshake;
  // The IO thread's context each accepted connection goes to (the shard's IO
  // threads in turn); null, or a null result: the listener's own.
  std::function<std::shared_ptr<boost::asio::io_context>()> connection_context;
  std::size_t max_per_address = 256;  // open connections from one remote address
  std::size_t max_pending = 1024;     // accepted, not yet taken by the consumer (or still in their handshake)
  int backlog = 1024;
};

class Listener final : public std::enable_shared_from_this<Listener> {
 public:
  using Notify = Connection::Notify;

  // Binds and listens (SO_REUSEADDR); port 0 picks one (port()).
  static std::shared_ptr<Listener> create(boost::asio::io_context& context,
                                          const boost::asio::ip::tcp::endpoint& endpoint, ListenerConfig config,
                                          std::shared_ptr<const NativeHandlers> native, std::error_code& error);
  // Posts the first accept.
  void start();

  // An accepted connection and the context it lives on (kept alive by
  // whoever keeps the connection: its socket needs it).
  struct Accepted {
    // The context first: the connection (its socket) is destroyed before it.
    std::shared_ptr<boost::asio::io_context> context;  // null: the listener's own
    std::shared_ptr<Connection> connection;
  };
  Accepted try_accept();
  // One-shot, as Connection::notify_readable: a connection is queued or the
  // listener closed.
  std::uint64_t notify_acceptable(Notify notify);
  void cancel_notify(std::uint64_t token);
  void cancel_notify_later(std::uint64_t token);  // as Connection's
  // Stops accepting at once (a connection attempt from here on is refused);
  // queued connections not taken are closed.
  void close();
  bool closed() const;
  std::uint16_t port() const { return port_; }

  struct Stats {
    std::uint64_t accepted = 0;
    std::uint64_t refused_per_address = 0;  // over max_per_address
    std::uint64_t refused_pending = 0;      // over max_pending
    std::uint64_t handshake_failed = 0;     // logged and closed, never queued
    std::size_t open = 0;                   // accepted connections not yet closed (handshaking too)
  };
  Stats stats() const;
  static std::size_t instances() noexcept { return instances_.load(std::memory_order_relaxed); }
  ~Listener() { instances_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  static inline std::atomic<std::size_t> instances_{0};
  Listener(boost::asio::io_context& context, ListenerConfig config, std::shared_ptr<const NativeHandlers> native);
  void accept_();
  void on_accept_(const boost::system::error_code& error, boost::asio::ip::tcp::socket socket,
                  std::shared_ptr<boost::asio::io_context> context);
  void log_(const std::string& line) const;
  void admit_(std::shared_ptr<Connection> connection, const std::string& address,
              std::shared_ptr<boost::asio::io_context> context);
  void forget_(const std::string& address);  // one of its connections ended

  boost::asio::ip::tcp::acceptor acceptor_;
  ListenerConfig config_;
  std::shared_ptr<const NativeHandlers> native_;
  std::uint16_t port_ = 0;
  int fd_ = -1;  // the listening socket's descriptor (close() shuts it down at once)

  mutable std::mutex mutex_;  // what follows
  std::deque<Accepted> pending_;
  std::map<std::string, std::size_t> per_address_;
  NotifyList waiters_;  // all keyed 0: a connection is queued, or closed
  std::vector<std::weak_ptr<Handshake>> handshakes_;  // cancelled by close()
  bool closed_ = false;
  Stats stats_;
};

}  // namespace shard::netproto
