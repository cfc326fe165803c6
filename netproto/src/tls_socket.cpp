#include "shard/netproto/tls_socket.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>

namespace shard::netproto {

namespace {
// The write end under the buffer BIO: OpenSSL's socket BIO writes with
// write(), which raises SIGPIPE once the peer has gone, and that signal ends
// any process that does not ignore it (CPython does; a C++ embedder, a test or
// a benchmark may not). send() with MSG_NOSIGNAL makes it an EPIPE for this
// connection alone. The fd is the BIO's data; it never closes it.
int send_nosignal(BIO* bio, const char* data, int size) {
  BIO_clear_retry_flags(bio);
  const int fd = static_cast<int>(reinterpret_cast<std::intptr_t>(BIO_get_data(bio)));
  const ssize_t n = ::send(fd, data, static_cast<std::size_t>(size), MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(bio);
  return static_cast<int>(n);
}

long socket_ctrl(BIO*, int command, long, void*) {
  // Flushing a socket is a no-op that succeeds; the buffer BIO above asks.
  return command == BIO_CTRL_FLUSH ? 1 : 0;
}

BIO* new_send_bio(int fd) {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "send, no SIGPIPE");
    if (m == nullptr || BIO_meth_set_write(m, send_nosignal) != 1 || BIO_meth_set_ctrl(m, socket_ctrl) != 1) {
      throw std::runtime_error("cannot make the TLS send BIO method");
    }
    return m;
  }();
  BIO* bio = BIO_new(method);
  if (bio == nullptr) return nullptr;
  BIO_set_data(bio, reinterpret_cast<void*>(static_cast<std::intptr_t>(fd)));
  BIO_set_init(bio, 1);
  return bio;
}

// Up to eight 16 KiB records per recv(), two of the peer's writes (below):
// fewer system calls and wake-ups, and a burst is decrypted in one
// async_read_some. Kept while the connection lives (no
// SSL_MODE_RELEASE_BUFFERS: freeing and remaking it per read costs more).
constexpr std::size_t kReadAhead = 128u << 10;
// A write takes up to four records of plaintext, and the buffer under the
// SSL holds their records whole (with room for any cipher's overhead), so
// they leave in one send(): per record, a send() and a wake of the reader
// cost about what encrypting it does on loopback.
constexpr std::size_t kRecordsPerWrite = 4;
constexpr std::size_t kPlaintextPerWrite = kRecordsPerWrite * SSL3_RT_MAX_PLAIN_LENGTH;
constexpr int kWriteBuffer = static_cast<int>(kRecordsPerWrite * (SSL3_RT_MAX_PLAIN_LENGTH + 512));
}  // namespace

TlsSocket::TlsSocket(Socket socket, SSL_CTX* context, bool server)
    : socket_(std::move(socket)), ssl_(SSL_new(context), &SSL_free) {
  if (ssl_ == nullptr) throw std::runtime_error("SSL_new failed");
  boost::system::error_code error;
  socket_.non_blocking(true, error);
  if (error) throw std::runtime_error("cannot make the socket non-blocking: " + error.message());
  if (SSL_set_fd(ssl_.get(), static_cast<int>(socket_.native_handle())) != 1) {
    throw std::runtime_error("SSL_set_fd failed");
  }
  BIO* socket_bio = new_send_bio(static_cast<int>(socket_.native_handle()));
  write_buffer_ = BIO_new(BIO_f_buffer());
  if (socket_bio == nullptr || write_buffer_ == nullptr || BIO_set_write_buffer_size(write_buffer_, kWriteBuffer) != 1) {
    BIO_free(socket_bio);
    BIO_free(write_buffer_);
    throw std::runtime_error("cannot make the TLS write buffer");
  }
  SSL_set0_wbio(ssl_.get(), BIO_push(write_buffer_, socket_bio));  // the read side keeps SSL_set_fd's BIO
  SSL_set_read_ahead(ssl_.get(), 1);
  SSL_set_default_read_buffer_len(ssl_.get(), kReadAhead);
  // A write may return after some records (asio::async_write goes on from
  // there), and its retry may come from a buffer that moved.
  SSL_set_mode(ssl_.get(), SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // The frames delimit the stream (a frame cut short is `truncated`), so an
  // end without close_notify is an ordinary end of stream.
  SSL_set_options(ssl_.get(), SSL_OP_IGNORE_UNEXPECTED_EOF);
  if (server) {
    SSL_set_accept_state(ssl_.get());
  } else {
    SSL_set_connect_state(ssl_.get());
  }
}

int TlsSocket::read_(char* data, std::size_t size, std::size_t& n) {
  const int result = SSL_read_ex(ssl_.get(), data, size, &n);
  if (result <= 0) return status_(result);
  while (n < size && SSL_has_pending(ssl_.get()) == 1) {
    std::size_t more = 0;
    if (SSL_read_ex(ssl_.get(), data + n, size - n, &more) <= 0) {
      ERR_clear_error();  // the next call meets whatever stopped this one
      break;
    }
    n += more;
  }
  return SSL_ERROR_NONE;
}

int TlsSocket::write_(const char* data, std::size_t size, std::size_t& n) {
  if (flushing_ == 0) {
    // With partial writes on, each SSL_write_ex stops after one record.
    std::size_t taken = 0;
    while (taken < size && taken < kPlaintextPerWrite) {
      std::size_t wrote = 0;
      const int result = SSL_write_ex(ssl_.get(), data + taken, size - taken, &wrote);
      if (result <= 0) {
        if (taken == 0) return status_(result);
        // What SSL took is reported; the caller's next write, from data +
        // taken, is the retry OpenSSL expects, and meets the same condition.
        ERR_clear_error();
        break;
      }
      taken += wrote;
    }
    flushing_ = taken;
  }
  if (BIO_flush(write_buffer_) <= 0) {
    return BIO_should_retry(write_buffer_) ? SSL_ERROR_WANT_WRITE : SSL_ERROR_SYSCALL;
  }
  n = flushing_;
  flushing_ = 0;
  return SSL_ERROR_NONE;
}

}  // namespace shard::netproto
