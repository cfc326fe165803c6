// Movement frames/s through the sol's native path on one IO thread: clients
// blast shard.wire.Movement frames over loopback at a listener whose IO thread
// hands them to MovementSystem::on_frame (parse, check, queue); the main
// thread ticks meanwhile, applying them. Beside it, the peer measured in the
// same run: the same frames through the ordinary path (queued per connection,
// drained by try_receive on the main thread, parsed there), i.e. what a
// consumer off the IO thread would get at best.
//
//   movement_bench [clients=8] [frames_per_client=200000]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "movement_system.h"
#include "shard/netproto/listener.h"

namespace np = shard::netproto;
namespace mv = shard::movement;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<std::uint8_t> payload_of(std::uint64_t id, std::uint32_t seq) {
  shard::wire::Movement m;
  m.set_entity_id(id);
  m.set_x(1.0 + seq * 1e-6);
  m.set_vx(1);
  m.set_sequence(seq);
  std::vector<std::uint8_t> out(m.ByteSizeLong());
  m.SerializeToArray(out.data(), static_cast<int>(out.size()));
  return out;
}

struct Rig {
  explicit Rig(std::shared_ptr<np::NativeHandlers> native) {
    std::error_code error;
    listener = np::Listener::create(server_io, {asio::ip::make_address("127.0.0.1"), 0}, {}, std::move(native), error);
    if (error) std::abort();
    listener->start();
    server_thread = std::thread([this] { server_io.run(); });
    client_thread = std::thread([this] { client_io.run(); });
  }
  ~Rig() {
    for (auto& c : clients) c->close();
    for (auto& c : servers) c->close();
    listener->close();
    server_work.reset();
    client_work.reset();
    server_thread.join();
    client_thread.join();
  }
  void connect(int n) {
    for (int i = 0; i < n; ++i) {
      asio::ip::tcp::socket socket(client_io);
      socket.connect({asio::ip::make_address("127.0.0.1"), listener->port()});
      auto c = np::Connection::create(std::move(socket), {});
      c->start();
      clients.push_back(c);
      std::shared_ptr<np::Connection> s;
      while ((s = listener->try_accept().connection) == nullptr) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      servers.push_back(s);
    }
  }
  void blast(int frames) {
    for (std::size_t i = 0; i < clients.size(); ++i) {
      np::FrameHeader h;
      h.kind = np::MessageKind::kMovement;
      h.native = true;
      h.dest_kind = np::DestKind::kEntity;
      h.target_id = i + 1;
      std::thread([c = clients[i], h, frames, i] {
        for (int f = 1; f <= frames; ++f) {
          auto p = payload_of(i + 1, static_cast<std::uint32_t>(f));
          while (c->send(h, p) != np::Connection::SendResult::kQueued) std::this_thread::yield();
          if (f % 4096 == 0) {
            while (c->stats().send_queued_bytes > (4u << 20)) std::this_thread::sleep_for(std::chrono::microseconds(200));
          }
        }
      }).detach();
    }
  }
  asio::io_context server_io, client_io;
  asio::executor_work_guard<asio::io_context::executor_type> server_work{server_io.get_executor()},
      client_work{client_io.get_executor()};
  std::shared_ptr<np::Listener> listener;
  std::vector<std::shared_ptr<np::Connection>> clients, servers;
  std::thread server_thread, client_thread;
};

}  // namespace

int main(int argc, char** argv) {
  const int n_clients = argc > 1 ? std::atoi(argv[1]) : 8;
  const int frames = argc > 2 ? std::atoi(argv[2]) : 200000;
  const std::uint64_t total = std::uint64_t(n_clients) * frames;
  double native_rate, queued_rate;
  {
    auto native = std::make_shared<np::NativeHandlers>();
    mv::MovementSystem system;
    system.install(*native);
    mv::SystemConfig config;
    config.min = {-1e9, -1e9, -1e9};
    config.max = {1e9, 1e9, 1e9};
    system.add_system(1, config);
    Rig rig(native);
    rig.connect(n_clients);
    std::string error;
    for (int i = 0; i < n_clients; ++i) system.add_entity(i + 1, 1, rig.servers[i], {1, 0, 0}, &error);
    const auto start = Clock::now();
    rig.blast(frames);
    while (system.stats().applied + system.stats().stale < total) {
      system.tick(1.0 / 30);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    native_rate = total / s;
    auto st = system.stats();
    std::printf("native path: %llu frames in %.3f s: %.0f frames/s on one IO thread (applied %llu, rejected %llu)\n",
                (unsigned long long)total, s, native_rate, (unsigned long long)st.applied,
                (unsigned long long)st.rejected);
  }
  {
    Rig rig(nullptr);
    rig.connect(n_clients);
    const auto start = Clock::now();
    rig.blast(frames);
    std::uint64_t got = 0;
    shard::wire::Movement m;
    while (got < total) {
      bool any = false;
      for (auto& s : rig.servers) {
        while (auto p = s->try_receive()) {
          m.ParseFromArray(p->payload.data(), static_cast<int>(p->payload.size()));
          ++got;
          any = true;
        }
      }
      if (!any) std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    queued_rate = total / s;
    std::printf("peer (queued, parsed off the IO thread): %llu frames in %.3f s: %.0f frames/s\n",
                (unsigned long long)total, s, queued_rate);
  }
  std::printf("native/peer: %.2f\n", native_rate / queued_rate);
}
