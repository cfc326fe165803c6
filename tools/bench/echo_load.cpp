// The framed-echo load generator (docs/benchmarks.md, "Framed echo"): N
// connections, each with one message in flight: a 4-byte length + 12-byte
// routing header + 64-byte payload frame (80 bytes) written, the same 80 bytes
// read back, again. One thread, one Asio io_context: pin it to its own CPU.
// Prints one JSON line: round trips/s and latency percentiles.
//
// Each connection first sends a Hello (no codec, no TLS) and reads one frame
// back: the shard answers HelloReply (docs/protocol.md, "Handshake"); the
// peers, plain framed echoes, send the Hello back. Either way the stream is
// then at a frame boundary.
//
//   echo_load HOST PORT CONNECTIONS SECONDS SERVER_NAME
#include <utility>  // before Asio (Boost 1.74, GCC 12, C++20)

#include <boost/asio.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "shard/netproto/frame_encoder.h"
#include "shard/netproto/message_codec.h"
#include "shard/netproto/negotiation.h"

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr std::size_t kPayload = 64;

struct Run {
  std::vector<std::uint8_t> frame;
  Clock::time_point measure_from, stop_at;
  std::vector<std::uint32_t> latencies_ns;  // measured round trips
  std::uint64_t errors = 0;
};

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(asio::io_context& context, Run& run) : socket_(context), run_(run), in_(run.frame.size()) {}
  tcp::socket& socket() { return socket_; }
  void round_trip() {
    sent_ = Clock::now();
    if (sent_ >= run_.stop_at) return;
    asio::async_write(socket_, asio::buffer(run_.frame), [self = shared_from_this()](auto error, std::size_t) {
      if (error) return self->fail();
      asio::async_read(self->socket_, asio::buffer(self->in_), [self](auto error, std::size_t) {
        if (error) return self->fail();
        const auto now = Clock::now();
        if (self->sent_ >= self->run_.measure_from) {
          self->run_.latencies_ns.push_back(static_cast<std::uint32_t>(
              std::min<long long>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - self->sent_).count(),
                                  0xffffffffLL)));
        }
        self->round_trip();
      });
    });
  }

 private:
  void fail() { ++run_.errors; }
  tcp::socket socket_;
  Run& run_;
  std::vector<std::uint8_t> in_;
  Clock::time_point sent_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: echo_load HOST PORT CONNECTIONS SECONDS SERVER_NAME\n");
    return 2;
  }
  const tcp::endpoint server(asio::ip::make_address(argv[1]), static_cast<unsigned short>(std::atoi(argv[2])));
  const int connections = std::atoi(argv[3]);
  const double seconds = std::atof(argv[4]);
  Run run;
  shard::netproto::FrameEncoder encoder;
  shard::netproto::FrameHeader header;
  header.kind = shard::netproto::MessageKind::kNotification;
  std::vector<std::uint8_t> payload(kPayload, 'x');
  encoder.append(run.frame, header, payload);

  std::vector<std::uint8_t> hello_frame;
  shard::wire::Hello hello;
  hello.set_min_version(shard::netproto::kProtocolVersion);
  hello.set_max_version(shard::netproto::kProtocolVersion);
  shard::netproto::append_message(encoder, hello_frame, {}, hello);

  asio::io_context context;
  std::vector<std::shared_ptr<Client>> clients;
  for (int i = 0; i < connections; ++i) {
    auto c = std::make_shared<Client>(context, run);
    c->socket().connect(server);
    c->socket().set_option(tcp::no_delay(true));
    asio::write(c->socket(), asio::buffer(hello_frame));
    std::array<std::uint8_t, 4> length;
    asio::read(c->socket(), asio::buffer(length));
    std::vector<std::uint8_t> reply(shard::netproto::load_u32le(length.data()));
    asio::read(c->socket(), asio::buffer(reply));
    clients.push_back(c);
  }
  const auto start = Clock::now();
  run.measure_from = start + std::chrono::milliseconds(500);  // warm-up
  run.stop_at = run.measure_from + std::chrono::microseconds(static_cast<long long>(seconds * 1e6));
  run.latencies_ns.reserve(1 << 22);
  for (auto& c : clients) c->round_trip();
  context.run();
  auto& l = run.latencies_ns;
  std::sort(l.begin(), l.end());
  auto pct = [&](double p) { return l.empty() ? 0.0 : l[std::min(l.size() - 1, std::size_t(p * l.size()))] / 1e3; };
  std::printf(
      "{\"bench\": \"framed_echo\", \"server\": \"%s\", \"connections\": %d, \"seconds\": %.1f, "
      "\"round_trips\": %zu, \"round_trips_per_s\": %.0f, \"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f, "
      "\"errors\": %llu}\n",
      argv[5], connections, seconds, l.size(), l.size() / seconds, pct(0.5), pct(0.99), l.empty() ? 0.0 : l.back() / 1e3,
      static_cast<unsigned long long>(run.errors));
  return run.errors == 0 ? 0 : 1;
}
