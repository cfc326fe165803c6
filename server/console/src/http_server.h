#pragma once
// The admin console's HTTP server (Boost.Beast) on one of the engine's IO
// threads. It parses requests and keeps WebSockets open; it never touches
// Python and decides nothing: each parsed request is queued for the console's
// tasklet (try_next(), notify_request()), which answers it with respond(),
// or accepts it as a WebSocket with upgrade(); broadcast() pushes a text
// message to every open WebSocket.
//
// Every byte from the network is hostile: the header and body have limits
// (431/413 answered on the IO thread), an idle or slow connection is closed
// after `idle`, requests queued for Python are bounded (503 past it), a
// WebSocket's inbound messages are bounded and dropped, and one that does not
// keep up with the push is closed rather than buffered without end.
//
// With a certificate and key (ServerConfig::tls_cert/tls_key, PEM), every
// connection is TLS (OpenSSL through Asio) before the first byte of HTTP.
//
// All the server's sockets live on its one io_context: their state is touched
// on that thread only. The public calls are thread-safe (they post there).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "shard/engine/asio.h"

#include <boost/asio/ssl/context.hpp>

namespace shard::console {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::uint64_t id = 0;  // for respond() / upgrade()
  std::string method;
  std::string target;
  Headers headers;
  std::string body;
  std::string peer;        // address:port
  bool websocket = false;  // an upgrade request
};

struct HttpResponse {
  unsigned status = 200;
  Headers headers;  // names and values without CR or LF (checked by the caller)
  std::string body;
};

struct ServerConfig {
  std::size_t max_header_bytes = 8 * 1024;
  std::size_t max_body_bytes = 64 * 1024;
  std::size_t max_queued = 64;           // requests waiting for the tasklet
  std::size_t max_connections = 64;      // HTTP and WebSocket together
  std::size_t max_ws_queue = 32;         // pushes waiting for one slow WebSocket
  std::size_t max_ws_message = 4 * 1024; // inbound WebSocket message (dropped)
  std::chrono::milliseconds idle{30000}; // a connection's read or write (and TLS handshake)
  std::string tls_cert;                  // PEM chain; empty: plain HTTP
  std::string tls_key;                   // PEM private key
};

struct ServerStats {
  std::uint64_t connections = 0;  // accepted
  std::uint64_t refused = 0;      // over max_connections
  std::uint64_t requests = 0;     // queued for the tasklet
  std::uint64_t busy = 0;         // answered 503: the queue was full
  std::uint64_t bad_requests = 0; // malformed or over a limit
  std::uint64_t ws_dropped = 0;   // WebSockets closed for not keeping up
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::size_t open = 0;           // connections open now
  std::size_t websockets = 0;     // of which WebSockets
};

// A connection whose request waits for the tasklet's answer (plain or TLS).
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual void write(HttpResponse response) = 0;
  virtual void upgrade(Headers headers) = 0;
  virtual void close() = 0;
};

// An open WebSocket (plain or TLS).
class Pushable {
 public:
  virtual ~Pushable() = default;
  virtual void push(std::shared_ptr<const std::string> text) = 0;
  virtual void close() = 0;
};

class HttpServer final : public std::enable_shared_from_this<HttpServer> {
 public:
  using Notify = std::function<void()>;

  // Listens on `endpoint` (port 0: any free one) and starts accepting.
  // Throws std::system_error (address in use, ...).
  static std::shared_ptr<HttpServer> start(std::shared_ptr<boost::asio::io_context> context,
                                           const boost::asio::ip::tcp::endpoint& endpoint, ServerConfig config);
  ~HttpServer();

  unsigned short port() const { return port_; }
  std::optional<HttpRequest> try_next();
  // `notify` runs once (any thread) when a request is queued, or at once if
  // one is; cancel_notify_later(token) withdraws it on the IO thread and runs
  // it there if it is still pending (the wait in shard::net::wait_on).
  std::uint64_t notify_request(Notify notify);
  void cancel_notify_later(std::uint64_t token);
  void respond(std::uint64_t id, HttpResponse response);
  void upgrade(std::uint64_t id, Headers headers);
  void broadcast(std::string text);
  bool tls() const { return tls_ != nullptr; }
  // Stops listening and closes every connection; waiters are notified.
  void close();
  bool closed() const { return closed_.load(); }
  ServerStats stats() const;

  // For the sessions, on the IO thread.
  boost::asio::io_context& context() { return *context_; }
  const ServerConfig& config() const { return config_; }
  void queue(HttpRequest request, std::shared_ptr<Exchange> session);
  void session_started() { ++open_; }
  void session_ended() { --open_; }
  void websocket_opened(const std::shared_ptr<Pushable>& ws);
  void websocket_closed() { --websockets_open_; }
  void count_in(std::size_t n) { bytes_in_ += n; }
  void count_out(std::size_t n) { bytes_out_ += n; }
  void count_bad() { ++bad_requests_; }
  void count_ws_dropped() { ++ws_dropped_; }

 private:
  HttpServer(std::shared_ptr<boost::asio::io_context> context, ServerConfig config);
  void accept();
  template <class Session, class... Args>
  void open_session(Args&&... args);
  void fire_notify();  // with mutex_ held: takes the pending notify out

  std::shared_ptr<boost::asio::io_context> context_;  // first: the sockets below use it
  ServerConfig config_;
  std::shared_ptr<boost::asio::ssl::context> tls_;  // null: plain
  boost::asio::ip::tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::atomic<bool> closed_{false};

  mutable std::mutex mutex_;  // inbox_ and the notification
  std::deque<HttpRequest> inbox_;
  Notify notify_;
  std::uint64_t notify_token_ = 0;
  std::uint64_t next_token_ = 1;

  // On the IO thread only.
  std::uint64_t next_id_ = 1;
  // Requests the tasklet has not answered yet: they keep their connection.
  std::unordered_map<std::uint64_t, std::shared_ptr<Exchange>> awaiting_;
  std::vector<std::weak_ptr<Exchange>> sessions_;
  std::vector<std::weak_ptr<Pushable>> websockets_;

  std::atomic<std::uint64_t> connections_{0}, refused_{0}, requests_{0}, busy_{0}, bad_requests_{0},
      ws_dropped_{0}, bytes_in_{0}, bytes_out_{0};
  std::atomic<std::size_t> open_{0}, websockets_open_{0};
};

}  // namespace shard::console
