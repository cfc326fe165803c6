#pragma once
// Real connections on 127.0.0.1 for the movement tests: a listener whose
// accepted connections carry the given native handlers, one io_context on its
// own thread standing for an IO thread, and clients dialling it.
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shard/netproto/connection.h"
#include "shard/netproto/listener.h"
#include "shard/netproto/native_handlers.h"
#include "shard/wire/movement.pb.h"

namespace shard::movement::testing {

namespace asio = boost::asio;
using namespace std::chrono_literals;

template <class F>
bool eventually(F condition, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

class Loopback {
 public:
  explicit Loopback(std::shared_ptr<netproto::NativeHandlers> native) {
    config_.connection.log = [this](const std::string& line) {
      std::lock_guard lock(mutex_);
      log_.push_back(line);
    };
    std::error_code error;
    listener_ = netproto::Listener::create(context_, {asio::ip::make_address("127.0.0.1"), 0}, config_,
                                           std::move(native), error);
    if (error) throw std::system_error(error);
    listener_->start();
    thread_ = std::thread([this] { context_.run(); });
  }
  ~Loopback() {
    for (auto& c : connections_) c->close();
    listener_->close();
    work_.reset();
    thread_.join();
  }
  // A client connection and the server's end of it.
  std::pair<std::shared_ptr<netproto::Connection>, std::shared_ptr<netproto::Connection>> pair() {
    asio::ip::tcp::socket socket(context_);
    socket.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
    auto client = netproto::Connection::create(std::move(socket), config_.connection);
    client->start();
    connections_.push_back(client);
    std::shared_ptr<netproto::Connection> server;
    eventually([&] { return (server = listener_->try_accept().connection) != nullptr; });
    if (server) connections_.push_back(server);
    return {client, server};
  }
  bool logged(const std::string& needle) {
    std::lock_guard lock(mutex_);
    for (auto& line : log_) {
      if (line.find(needle) != std::string::npos) return true;
    }
    return false;
  }

 private:
  asio::io_context context_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{context_.get_executor()};
  netproto::ListenerConfig config_;
  std::shared_ptr<netproto::Listener> listener_;
  std::vector<std::shared_ptr<netproto::Connection>> connections_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::string> log_;
};

inline netproto::FrameHeader movement_header(std::uint64_t target) {
  netproto::FrameHeader h;
  h.kind = netproto::MessageKind::kMovement;
  h.native = true;
  h.priority = netproto::Priority::kHigh;
  h.dest_kind = netproto::DestKind::kEntity;
  h.target_id = target;
  return h;
}

inline std::vector<std::uint8_t> bytes_of(const wire::Movement& m) {
  std::vector<std::uint8_t> out(m.ByteSizeLong());
  m.SerializeToArray(out.data(), static_cast<int>(out.size()));
  return out;
}

inline wire::Movement move(std::uint64_t id, double x, double y, double z, std::uint32_t seq, float vx = 0) {
  wire::Movement m;
  m.set_entity_id(id);
  m.set_x(x);
  m.set_y(y);
  m.set_z(z);
  m.set_vx(vx);
  m.set_sequence(seq);
  return m;
}

}  // namespace shard::movement::testing
