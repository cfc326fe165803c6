#include "read_poller.h"

#include <sys/epoll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <stdexcept>
#include <string>

#include "shard/netproto/connection.h"

namespace shard::netproto {

namespace {
// Ready sockets taken per epoll_wait; more stay on epoll's ready list for the next round.
constexpr int kBatch = 256;

int make_epoll() {
  const int fd = epoll_create1(EPOLL_CLOEXEC);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "epoll_create1 for the read set");
  return fd;
}
}  // namespace

ReadPoller::ReadPoller(boost::asio::execution_context& context)
    : boost::asio::execution_context::service(context),
      epoll_(make_epoll()),
      set_(static_cast<boost::asio::io_context&>(context), epoll_) {}

ReadPoller::~ReadPoller() = default;  // set_ closes epoll_

void ReadPoller::shutdown() {
  boost::system::error_code ignored;
  set_.close(ignored);
  readers_.clear();
  free_.clear();
  retired_.clear();
}

std::error_code ReadPoller::add(int fd, std::shared_ptr<Connection> connection, std::uint32_t& slot) {
  if (free_.empty()) {
    slot = static_cast<std::uint32_t>(readers_.size());
    readers_.emplace_back();
  } else {
    slot = free_.back();
    free_.pop_back();
  }
  Reader& reader = readers_[slot];
  epoll_event event{};
  // Edge-triggered: a level-triggered socket goes back on epoll's ready list
  // once reported and is polled again by the next epoll_wait only to be found
  // empty, a second tcp_poll per packet; Connection::on_readable_ reads until a
  // short read instead. Added while it has bytes (a resumed read), it is ready at once.
  event.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
  event.data.u64 = (static_cast<std::uint64_t>(reader.generation) << 32) | slot;
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0) {
    const int error = errno;
    free_.push_back(slot);
    return {error, std::system_category()};
  }
  reader.connection = std::move(connection);
  arm_();
  return {};
}

void ReadPoller::remove(int fd, Connection* connection, std::uint32_t slot) {
  if (slot >= readers_.size() || readers_[slot].connection.get() != connection || connection == nullptr) return;
  epoll_event ignored{};
  epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, &ignored);  // fails only if fd is closed already: then it left the set
  Reader& reader = readers_[slot];
  std::shared_ptr<Connection> gone = std::move(reader.connection);
  ++reader.generation;
  free_.push_back(slot);
  if (polling_) retired_.push_back(std::move(gone));
  // An empty set waits for nothing: a pending wait would keep the IO
  // thread's run() from returning once its work is done.
  if (size_() == 0 && waiting_) set_.cancel();
  // `gone` may be the connection's last reference, released here (outside a batch).
}

void ReadPoller::arm_() {
  if (waiting_ || size_() == 0 || !set_.is_open()) return;
  waiting_ = true;
  set_.async_wait(boost::asio::posix::stream_descriptor::wait_read, [this](const boost::system::error_code& error) {
    waiting_ = false;
    // Cancelled because the set emptied (remove): it may have filled again since.
    if (!error) poll_();
    if (!error || error == boost::asio::error::operation_aborted) arm_();
  });
}

void ReadPoller::poll_() {
  std::array<epoll_event, kBatch> events;
  const int n = epoll_wait(epoll_, events.data(), kBatch, 0);
  polling_ = true;
  for (int i = 0; i < n; ++i) {
    const std::uint64_t key = events[i].data.u64;
    const auto slot = static_cast<std::uint32_t>(key);
    if (slot >= readers_.size()) continue;
    const Reader& reader = readers_[slot];
    if (reader.connection == nullptr || reader.generation != static_cast<std::uint32_t>(key >> 32)) continue;
    // It may remove itself (kept in retired_ until the batch ends), and
    // what it runs may add others (readers_ may move).
    Connection* connection = reader.connection.get();
    connection->on_readable_((events[i].events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0);
  }
  polling_ = false;
  retired_.clear();
}

}  // namespace shard::netproto
