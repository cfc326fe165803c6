#pragma once
// TLS on a connected TCP socket, OpenSSL reading and writing the socket
// itself: the socket is non-blocking, OpenSSL's socket BIO does the reads and
// a BIO of ours the writes (send() with MSG_NOSIGNAL: a peer that has gone is
// an error for that connection, never a SIGPIPE for the process), and an operation that would block waits for readiness through Asio
// (async_wait) and is retried. Reads use OpenSSL's read-ahead with a 128 KiB
// buffer: one recv() brings several records, decrypted straight into the
// caller's buffer, and one async_read_some returns as many records as fit.
//
// Why not Asio's ssl::stream: its engine moves every byte through a 17 KiB
// BIO pair (two more copies) and completes one record per operation (a recv()
// and a handler per 16 KiB); at 16 KiB frames that left the IO thread at about
// a quarter of OpenSSL's own AES-GCM speed (docs/benchmarks.md). The contexts
// are still Asio's ssl::context (tls.h).
//
// Same contract as an Asio stream: one read and one write may be pending at
// once; handlers never run inside the call that started them; closing the
// socket ends pending operations with operation_aborted. IO thread only.

#include <utility>  // before Asio: Boost 1.74's Asio with GCC 12 in C++20 needs it

#include <boost/asio.hpp>
#include <boost/asio/ssl/error.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cerrno>
#include <memory>

namespace shard::netproto {

class TlsSocket final {
 public:
  using Socket = boost::asio::ip::tcp::socket;
  using executor_type = Socket::executor_type;

  // Throws std::runtime_error if OpenSSL cannot make the session.
  TlsSocket(Socket socket, SSL_CTX* context, bool server);
  TlsSocket(const TlsSocket&) = delete;
  TlsSocket& operator=(const TlsSocket&) = delete;

  Socket& next_layer() noexcept { return socket_; }
  SSL* native_handle() noexcept { return ssl_.get(); }
  executor_type get_executor() noexcept { return socket_.get_executor(); }

  template <class Handler>
  void async_handshake(Handler&& handler) {
    start_([this](std::size_t& n) {
             n = 0;
             return status_(SSL_do_handshake(ssl_.get()));
           },
           [handler = std::forward<Handler>(handler)](boost::system::error_code error, std::size_t) mutable {
             handler(error);
           });
  }

  template <class Buffers, class Handler>
  void async_read_some(const Buffers& buffers, Handler&& handler) {
    const boost::asio::mutable_buffer b = *boost::asio::buffer_sequence_begin(buffers);
    start_([this, b](std::size_t& n) { return read_(static_cast<char*>(b.data()), b.size(), n); },
           std::forward<Handler>(handler));
  }

  template <class Buffers, class Handler>
  void async_write_some(const Buffers& buffers, Handler&& handler) {
    const boost::asio::const_buffer b = *boost::asio::buffer_sequence_begin(buffers);
    start_([this, b](std::size_t& n) { return write_(static_cast<const char*>(b.data()), b.size(), n); },
           std::forward<Handler>(handler));
  }

 private:
  // Runs `op` until it succeeds or fails, waiting for the socket whenever
  // OpenSSL wants it. `op` returns SSL_ERROR_NONE or what SSL_get_error says.
  template <class Op, class Handler>
  struct Drive {
    TlsSocket* self;
    Op op;
    Handler handler;
    bool waited = false;  // false: still inside the initiating call

    void operator()(boost::system::error_code error = {}) {
      if (error) return complete(error, 0);
      ERR_clear_error();
      errno = 0;  // SSL_ERROR_SYSCALL reads it
      std::size_t n = 0;
      switch (op(n)) {
        case SSL_ERROR_NONE:
          return complete({}, n);
        case SSL_ERROR_WANT_READ:
          waited = true;
          return self->socket_.async_wait(Socket::wait_read, std::move(*this));
        case SSL_ERROR_WANT_WRITE:
          waited = true;
          return self->socket_.async_wait(Socket::wait_write, std::move(*this));
        case SSL_ERROR_ZERO_RETURN:  // close_notify, or (IGNORE_UNEXPECTED_EOF) a bare end of stream
          return complete(boost::asio::error::eof, 0);
        case SSL_ERROR_SYSCALL:
          if (const unsigned long e = ERR_get_error(); e != 0) return complete(ssl_error(e), 0);
          return complete(errno != 0 ? boost::system::error_code(errno, boost::system::system_category())
                                     : boost::system::error_code(boost::asio::error::eof),
                          0);
        default:
          return complete(ssl_error(ERR_get_error()), 0);
      }
    }
    void complete(boost::system::error_code error, std::size_t n) {
      if (waited) return handler(error, n);
      boost::asio::post(self->socket_.get_executor(),
                        [handler = std::move(handler), error, n]() mutable { handler(error, n); });
    }
    static boost::system::error_code ssl_error(unsigned long e) {
      return {static_cast<int>(e), boost::asio::error::get_ssl_category()};
    }
  };

  template <class Op, class Handler>
  void start_(Op op, Handler&& handler) {
    Drive<Op, std::decay_t<Handler>>{this, std::move(op), std::forward<Handler>(handler)}();
  }
  int status_(int result) const { return result > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_.get(), result); }
  // SSL_read_ex, then more while whole records are already buffered.
  int read_(char* data, std::size_t size, std::size_t& n);
  // SSL_write_ex into the buffer BIO, a record at a time up to four, then its
  // flush (retried alone).
  int write_(const char* data, std::size_t size, std::size_t& n);

  Socket socket_;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl_;
  BIO* write_buffer_ = nullptr;  // the SSL's wbio (it owns it)
  std::size_t flushing_ = 0;     // bytes SSL took whose records await the flush; 0: none
};

}  // namespace shard::netproto
