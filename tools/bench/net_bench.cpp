// Frames per second and MB/s through one IO thread over real loopback
// connections (docs/benchmarks.md, "Connections per IO thread"): plain,
// snappy, zlib and TLS, 64 B and 16 KiB payloads, each direction on its own:
//
//   recv: a peer IO thread sends; the measured IO thread reads, decrypts,
//         decompresses and frames (each frame handed to a native handler that
//         counts it, on the IO thread);
//   recv_queued: the same, but each frame is queued as a Packet for a
//         consumer thread (the main thread's try_receive), the path Python's
//         recvpacket takes;
//   send: the measured IO thread takes queued sends, encodes, compresses,
//         encrypts and writes them; the peer reads and counts.
//
// Both ends ran the real handshake (handshake.h), which picked the codec and
// TLS. Besides frames/s of wall time it reports frames per CPU-second of the
// measured thread (its CLOCK_THREAD_CPUTIME_ID), the rate one fully busy IO
// thread sustains, which a shared machine's noise affects less.
// One JSON line per case: the best of --repeat runs (wall-clock figures and
// thread_cpu from the fastest run, per-CPU-second figures from the most
// efficient one).
//
//   build/bin/net_bench [--seconds 1] [--repeat 3] [--cases plain,snappy,zlib,tls] [--payloads 64,16384]
//                       [--directions recv,recv_queued,send] [--peers 1]
//                       [--certs build/devcert]
#include <pthread.h>
#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "shard/netproto/handshake.h"
#include "shard/netproto/listener.h"
#include "shard/netproto/native_handlers.h"

namespace net = shard::netproto;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// Chat/market-like text (as codec_bench): compressible, not trivially.
std::vector<std::uint8_t> payload_of(std::size_t n) {
  static const char* words[] = {"ship",  "jita",   "buy",  "sell", "order", "tritanium", "fleet", "warp",
                                "dock",  "market", "isk",  "ore",  "pilot", "station",   "gate",  "local"};
  std::mt19937 rng(7);
  std::string s;
  while (s.size() < n) {
    s += words[rng() % 16];
    s += ' ';
    if (rng() % 4 == 0) s += std::to_string(rng() % 100000) + ' ';
  }
  return {s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n)};
}

// An io_context on its own thread: an IO thread.
struct IoThread {
  explicit IoThread(const char* name) : name_(name) {}
  const char* name_;  // shows in perf's per-thread reports
  asio::io_context context;
  asio::executor_work_guard<asio::io_context::executor_type> work{context.get_executor()};
  std::thread thread{[this] {
    pthread_setname_np(pthread_self(), name_);
    context.run();
  }};
  ~IoThread() {
    work.reset();
    context.stop();
    thread.join();
  }
  double cpu_seconds() {  // of this thread, read on it
    std::promise<double> p;
    asio::post(context, [&] {
      timespec ts;
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
      p.set_value(ts.tv_sec + ts.tv_nsec / 1e9);
    });
    return p.get_future().get();
  }
};

struct Counter {
  std::atomic<std::uint64_t> frames{0}, bytes{0};
};

// Keeps `window` frames queued on `sender`, from its own IO thread: each time
// half of them are written, it queues more.
class Pump : public std::enable_shared_from_this<Pump> {
 public:
  Pump(std::shared_ptr<net::Connection> sender, std::vector<std::uint8_t> payload, std::size_t window)
      : sender_(std::move(sender)), payload_(std::move(payload)), window_(window) {}
  void run() {
    if (stop_.load(std::memory_order_relaxed) || sender_->closed()) return;
    net::FrameHeader header;
    header.kind = net::MessageKind::kNotification;
    std::uint64_t seq = 0;
    const std::span<const std::uint8_t> part(payload_);
    while (queued_ < written_target_ + window_) {
      if (sender_->send(header, std::span(&part, 1), &seq) != net::Connection::SendResult::kQueued) return;
      ++queued_;
    }
    written_target_ = seq - window_ / 2;
    sender_->notify_sent(written_target_, [self = shared_from_this()] {
      asio::post(self->sender_executor(), [self] { self->run(); });
    });
  }
  void stop() { stop_ = true; }
  asio::any_io_executor sender_executor() const { return executor_; }
  void set_executor(asio::any_io_executor e) { executor_ = std::move(e); }

 private:
  std::shared_ptr<net::Connection> sender_;
  std::vector<std::uint8_t> payload_;
  std::size_t window_;
  std::uint64_t queued_ = 0, written_target_ = 0;
  std::atomic<bool> stop_{false};
  asio::any_io_executor executor_;
};

struct Case {
  std::string name;  // plain, snappy, zlib, tls
  net::Codec codec;
  bool tls;
};

struct Pair {
  std::shared_ptr<net::Listener> listener;
  std::shared_ptr<net::Connection> accepted, dialed;
};

// A connection between the two threads' contexts after the real handshake:
// `server` accepts (and is where the listener lives), `client` dials.
Pair connect(IoThread& server, IoThread& client, const Case& c, const std::string& certs,
             std::shared_ptr<net::NativeHandlers> server_native, std::shared_ptr<net::NativeHandlers> client_native) {
  auto hs = std::make_shared<net::ServerHandshake>();
  hs->policy.codecs = {c.codec};
  if (c.tls) {
    std::string error;
    hs->tls = net::make_server_tls(certs + "/dev.crt", certs + "/dev.key", &error);
    if (!hs->tls) throw std::runtime_error(error);
  }
  hs->policy.tls_supported = hs->tls != nullptr;
  net::ListenerConfig config;
  config.handshake = hs;
  std::error_code error;
  Pair pair;
  pair.listener = net::Listener::create(server.context, {asio::ip::make_address("127.0.0.1"), 0}, config,
                                        std::move(server_native), error);
  if (error) throw std::system_error(error);
  pair.listener->start();

  auto offer = std::make_shared<net::ClientHandshake>();
  offer->codecs = {c.codec};
  if (c.tls) {
    std::string e;
    offer->tls = net::make_client_tls(certs + "/dev.crt", true, &e);
    offer->tls_required = true;
    offer->server_name = "127.0.0.1";
  }
  asio::ip::tcp::socket socket(client.context);
  socket.connect({asio::ip::make_address("127.0.0.1"), pair.listener->port()});
  std::promise<net::Handshaken> done;
  net::Handshake::connect(std::move(socket), offer, [&](net::Handshaken r) { done.set_value(std::move(r)); });
  net::Handshaken r = done.get_future().get();
  if (!r.stream) throw std::runtime_error("handshake: " + r.error);
  net::ConnectionConfig cc;
  net::configure(cc, r.negotiated);
  pair.dialed = net::Connection::create(std::move(*r.stream), cc, std::move(client_native));
  pair.dialed->start();
  while (!(pair.accepted = pair.listener->try_accept().connection)) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return pair;
}

std::shared_ptr<net::NativeHandlers> counting(Counter& counter) {
  auto h = std::make_shared<net::NativeHandlers>();
  h->set(net::MessageKind::kNotification, [&counter](net::Connection&, const net::Frame& f) {
    counter.frames.fetch_add(1, std::memory_order_relaxed);
    counter.bytes.fetch_add(f.payload.size(), std::memory_order_relaxed);
  });
  return h;
}

enum class Direction { kRecv, kRecvQueued, kSend };

struct Figures {
  double frames_per_s = 0, mb_per_s = 0, thread_cpu = 0, frames_per_cpu_s = 0, mb_per_cpu_s = 0, wire = 0;
  std::string tls;
};

// `peers` connections, each with its own peer IO thread, all on the one
// measured thread: with more than one, the measured thread is kept busy
// (a peer does as much crypto per byte as it does, so one peer cannot).
Figures run_case(const Case& c, std::size_t size, Direction direction, double seconds, const std::string& certs,
                 int peers) {
  IoThread measured("measured");
  std::vector<std::unique_ptr<IoThread>> peer_threads;
  Counter counter;
  const bool measured_receives = direction != Direction::kSend;
  std::vector<Pair> pairs;
  std::vector<std::shared_ptr<Pump>> pumps;
  const std::size_t window = std::max<std::size_t>(64, (4u << 20) / (size + 16));
  for (int i = 0; i < peers; ++i) {
    IoThread& peer = *peer_threads.emplace_back(std::make_unique<IoThread>("peer"));
    // The measured thread holds the receiving end (recv) or the sending end (send).
    IoThread& receiver = measured_receives ? measured : peer;
    IoThread& sender = measured_receives ? peer : measured;
    pairs.push_back(connect(receiver, sender, c, certs,
                            direction == Direction::kRecvQueued ? nullptr : counting(counter), nullptr));
    auto pump = std::make_shared<Pump>(pairs.back().dialed, payload_of(size), window);
    pump->set_executor(sender.context.get_executor());
    pumps.push_back(pump);
  }
  std::atomic<bool> consuming{direction == Direction::kRecvQueued};
  std::thread consumer([&] {
    while (consuming.load(std::memory_order_relaxed)) {
      for (Pair& pair : pairs) {
        while (auto packet = pair.accepted->try_receive()) {
          counter.frames.fetch_add(1, std::memory_order_relaxed);
          counter.bytes.fetch_add(packet->payload.size(), std::memory_order_relaxed);
        }
      }
      std::this_thread::yield();
    }
  });
  for (auto& pump : pumps) asio::post(pump->sender_executor(), [pump] { pump->run(); });

  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // warm-up
  const std::uint64_t f0 = counter.frames, b0 = counter.bytes;
  const double cpu0 = measured.cpu_seconds();
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const std::uint64_t f1 = counter.frames, b1 = counter.bytes;
  const double cpu1 = measured.cpu_seconds();
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& pump : pumps) pump->stop();
  consuming = false;
  consumer.join();
  std::uint64_t bytes_out = 0, packets_out = 0;
  for (Pair& pair : pairs) {
    const auto wire = pair.dialed->stats();
    bytes_out += wire.bytes_out;
    packets_out += wire.packets_out;
    pair.dialed->close();
    pair.accepted->close();
    pair.listener->close();
  }

  const double frames = static_cast<double>(f1 - f0), cpu = cpu1 - cpu0;
  return {frames / wall,
          (b1 - b0) / wall / 1e6,
          cpu / wall,
          frames / cpu,
          (b1 - b0) / cpu / 1e6,
          packets_out ? static_cast<double>(bytes_out) / packets_out : 0.0,
          pairs.front().accepted->negotiated().tls};
}

const char* name_of(Direction d) {
  return d == Direction::kSend ? "send" : d == Direction::kRecv ? "recv" : "recv_queued";
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 1.0;
  int repeat = 3, peers = 1;
  std::string cases = "plain,snappy,zlib,tls", certs = "build/devcert", payloads = "64,16384",
              directions = "recv,recv_queued,send";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    if (!std::strcmp(argv[i], "--cases")) cases = argv[i + 1];
    if (!std::strcmp(argv[i], "--certs")) certs = argv[i + 1];
    if (!std::strcmp(argv[i], "--payloads")) payloads = argv[i + 1];
    if (!std::strcmp(argv[i], "--directions")) directions = argv[i + 1];
    if (!std::strcmp(argv[i], "--peers")) peers = std::max(1, std::atoi(argv[i + 1]));
    if (!std::strcmp(argv[i], "--repeat")) repeat = std::max(1, std::atoi(argv[i + 1]));
  }
  const Case all[] = {{"plain", net::Codec::kNone, false},
                      {"snappy", net::Codec::kSnappy, false},
                      {"zlib", net::Codec::kZlib, false},
                      {"tls", net::Codec::kNone, true}};
  for (const Case& c : all) {
    if (("," + cases + ",").find("," + c.name + ",") == std::string::npos) continue;
    for (std::size_t size : {std::size_t{64}, std::size_t{16384}}) {
      if (("," + payloads + ",").find("," + std::to_string(size) + ",") == std::string::npos) continue;
      for (Direction d : {Direction::kRecv, Direction::kRecvQueued, Direction::kSend}) {
        if (("," + directions + ",").find(std::string(",") + name_of(d) + ",") == std::string::npos) continue;
        // Best of `repeat`, wall-clock and per CPU-second each on its own: a
        // shared machine only ever slows a run down.
        Figures best, best_cpu;
        for (int r = 0; r < repeat; ++r) {
          Figures f = run_case(c, size, d, seconds, certs, peers);
          if (f.frames_per_s > best.frames_per_s) best = f;
          if (f.frames_per_cpu_s > best_cpu.frames_per_cpu_s) best_cpu = f;
        }
        std::printf(
            "{\"bench\": \"net_io_thread\", \"case\": \"%s\", \"direction\": \"%s\", \"payload\": %zu, "
            "\"tls\": \"%s\", \"frames_per_s\": %.0f, \"mb_per_s\": %.1f, \"thread_cpu\": %.2f, "
            "\"frames_per_cpu_s\": %.0f, \"mb_per_cpu_s\": %.1f, \"wire_bytes_per_frame\": %.1f, \"repeat\": %d, "
            "\"peers\": %d}\n",
            c.name.c_str(), name_of(d), size, best.tls.c_str(), best.frames_per_s, best.mb_per_s, best.thread_cpu,
            best_cpu.frames_per_cpu_s, best_cpu.mb_per_cpu_s, best.wire, repeat, peers);
        std::fflush(stdout);
      }
    }
  }
}
