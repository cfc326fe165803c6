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
// Ready sockets taken per epoll_wait; more wait for the next round (level-triggered).
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
}

std::error_code ReadPoller::add(int fd, std::shared_ptr<Connection> connection) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.ptr = connection.get();
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &event) != 0) return {errno, std::system_category()};
  readers_.emplace(connection.get(), std::move(connection));
  arm_();
  return {};
}

void ReadPoller::remove(int fd, Connection* connection) {
  if (readers_.erase(connection) == 0) return;
  epoll_event ignored{};
  epoll_ctl(epoll_, EPOLL_CTL_DEL, fd, &ignored);  // fails only if fd is closed already: then it left the set
  // An empty set waits for nothing: a pending wait would keep the IO
  // thread's run() from returning once its work is done.
  if (readers_.empty() && waiting_) set_.cancel();
}

void ReadPoller::arm_() {
  if (waiting_ || readers_.empty() || !set_.is_open()) return;
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
  for (int i = 0; i < n; ++i) {
    // A connection removed earlier in this batch is skipped; one still in the
    // set is held while it reads (it may remove itself).
    auto it = readers_.find(static_cast<Connection*>(events[i].data.ptr));
    if (it == readers_.end()) continue;
    std::shared_ptr<Connection> reader = it->second;
    reader->on_readable_();
  }
}

}  // namespace shard::netproto
