#pragma once
// The loopback fixture of the connection tests: a listener and connections on
// one io_context running on its own thread (standing for an IO thread), a
// client-side context for raw sockets, and the log of close reasons.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "shard/netproto/connection.h"
#include "shard/netproto/frame_encoder.h"
#include "shard/netproto/listener.h"
#include "shard/netproto/native_handlers.h"

namespace shard::netproto::testing_loopback {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

// Waits (polling) for `condition`; false after `limit`.
template <class F>
inline bool eventually(F condition, std::chrono::milliseconds limit = 5s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

inline std::span<const std::uint8_t> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

inline std::string text_of(const Packet& p) { return {p.payload.begin(), p.payload.end()}; }

inline FrameHeader notification() {
  FrameHeader h;
  h.kind = MessageKind::kNotification;
  return h;
}

class LoopbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.connection.log = [this](const std::string& line) {
      std::lock_guard lock(log_mutex_);
      log_.push_back(line);
    };
    thread_ = std::thread([this] { context_.run(); });
  }
  void TearDown() override {
    for (auto& c : connections_) c->close();
    if (listener_) listener_->close();
    work_.reset();
    thread_.join();
  }

  void listen() {
    std::error_code error;
    listener_ = Listener::create(context_, {asio::ip::make_address("127.0.0.1"), 0}, config_, native_, error);
    ASSERT_FALSE(error) << error.message();
    listener_->start();
  }
  // A raw socket to the listener, driven synchronously from the test thread.
  tcp::socket raw_client() {
    tcp::socket socket(client_context_);
    socket.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
    return socket;
  }
  // A Connection to the listener, on the loop's context.
  std::shared_ptr<Connection> client() {
    tcp::socket socket(context_);
    socket.connect({asio::ip::make_address("127.0.0.1"), listener_->port()});
    auto c = Connection::create(std::move(socket), config_.connection);
    c->start();
    connections_.push_back(c);
    return c;
  }
  std::shared_ptr<Connection> accepted() {
    std::shared_ptr<Connection> c;
    EXPECT_TRUE(eventually([&] { return (c = listener_->try_accept().connection) != nullptr; }));
    if (c) connections_.push_back(c);
    return c;
  }
  bool logged(const std::string& needle) {
    std::lock_guard lock(log_mutex_);
    for (auto& line : log_) {
      if (line.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  static std::vector<std::uint8_t> frame_bytes(const std::string& text) {
    FrameEncoder encoder;
    std::vector<std::uint8_t> out;
    encoder.append(out, notification(), bytes_of(text));
    return out;
  }

  asio::io_context context_;
  asio::executor_work_guard<asio::io_context::executor_type> work_{context_.get_executor()};
  asio::io_context client_context_;
  std::thread thread_;
  ListenerConfig config_;
  std::shared_ptr<NativeHandlers> native_;
  std::shared_ptr<Listener> listener_;
  std::vector<std::shared_ptr<Connection>> connections_;
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

}  // namespace shard::netproto::testing_loopback
