// The framed echo's ceiling (docs/benchmarks.md, "Framed echo"): a
// single-threaded Boost.Asio server in plain C++, no Python, no second
// thread. Each connection reads what is there into its buffer, echoes every
// complete frame (4-byte little-endian length + that many bytes) in one
// write, keeps a partial frame for the next read. Prints "ready PORT".
//
//   echo_asio [PORT]
#include <utility>  // before Asio (Boost 1.74, GCC 12, C++20)

#include <boost/asio.hpp>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr std::size_t kReadSize = 64 << 10;
constexpr std::uint32_t kMaxFrame = 1 << 20;  // a longer length closes the connection

class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket socket) : socket_(std::move(socket)) {}
  void read() {
    if (in_.size() < used_ + kReadSize) in_.resize(used_ + kReadSize);
    socket_.async_read_some(asio::buffer(in_.data() + used_, kReadSize),
                            [self = shared_from_this()](boost::system::error_code error, std::size_t n) {
                              if (!error) self->on_read(n);
                            });
  }

 private:
  void on_read(std::size_t n) {
    used_ += n;
    std::size_t end = 0;  // complete frames
    while (used_ - end >= 4) {
      std::uint32_t length;
      std::memcpy(&length, in_.data() + end, 4);  // little-endian host
      if (length > kMaxFrame) return;            // the socket closes with the session
      if (used_ - end < 4 + length) break;
      end += 4 + length;
    }
    if (end == 0) return read();
    out_.assign(in_.begin(), in_.begin() + static_cast<std::ptrdiff_t>(end));
    std::memmove(in_.data(), in_.data() + end, used_ - end);
    used_ -= end;
    // One message in flight per connection: the next read starts once written.
    asio::async_write(socket_, asio::buffer(out_), [self = shared_from_this()](boost::system::error_code error, std::size_t) {
      if (!error) self->read();
    });
  }

  tcp::socket socket_;
  std::vector<std::uint8_t> in_, out_;
  std::size_t used_ = 0;
};

void accept(tcp::acceptor& acceptor) {
  acceptor.async_accept([&acceptor](boost::system::error_code error, tcp::socket socket) {
    if (!error) {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<Session>(std::move(socket))->read();
    }
    accept(acceptor);
  });
}

}  // namespace

int main(int argc, char** argv) {
  asio::io_context context(1);
  tcp::acceptor acceptor(context);
  const tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"),
                               static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 0));
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(4096);
  std::printf("ready %u\n", static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);
  accept(acceptor);
  context.run();
}
