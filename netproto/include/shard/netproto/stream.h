#pragma once
// The byte stream under a Connection: a plain TCP socket, or TLS over one
// (TlsSocket: OpenSSL on the socket) when the handshake switched to it. It models
// Asio's AsyncReadStream/AsyncWriteStream, so Connection reads with
// async_read_some and writes with asio::async_write whatever it holds.
//
// A variant and a branch rather than a virtual interface: the plain path pays
// one predictable test per operation, and its handlers go to the socket
// unwrapped. Encryption and decryption run where the operation completes: on
// the IO thread that owns the socket, never near Python.

#include <utility>  // before Asio: Boost 1.74's Asio with GCC 12 in C++20 needs it

#include <boost/asio.hpp>

#include <memory>
#include <string>
#include <variant>

#include "shard/netproto/tls_socket.h"

namespace shard::netproto {

class Stream final {
 public:
  using Socket = boost::asio::ip::tcp::socket;
  using Tls = TlsSocket;
  using executor_type = Socket::executor_type;

  explicit Stream(Socket socket) : stream_(std::move(socket)) {}
  // A TLS stream whose handshake is done.
  explicit Stream(std::unique_ptr<Tls> tls) : stream_(std::move(tls)) {}

  executor_type get_executor() noexcept { return socket().get_executor(); }
  Socket& socket() noexcept {
    if (auto* tls = std::get_if<std::unique_ptr<Tls>>(&stream_)) return (*tls)->next_layer();
    return std::get<Socket>(stream_);
  }
  bool tls() const noexcept { return std::holds_alternative<std::unique_ptr<Tls>>(stream_); }
  // "TLSv1.3 TLS_AES_256_GCM_SHA384", or empty for plain TCP.
  std::string tls_description() const;

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    if (auto* tls = std::get_if<std::unique_ptr<Tls>>(&stream_)) {
      (*tls)->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      std::get<Socket>(stream_).async_read_some(buffers, std::forward<Handler>(handler));
    }
  }

  template <class Buffers, class Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    if (auto* tls = std::get_if<std::unique_ptr<Tls>>(&stream_)) {
      (*tls)->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      std::get<Socket>(stream_).async_write_some(buffers, std::forward<Handler>(handler));
    }
  }

  // Shuts the TCP socket down both ways and closes it; pending operations end
  // with operation_aborted. No close_notify: the framing already delimits the
  // stream's end (an end without it reads as eof: tls_socket.h).
  void close() noexcept;

 private:
  std::variant<Socket, std::unique_ptr<Tls>> stream_;
};

}  // namespace shard::netproto
