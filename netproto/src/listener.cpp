#include "shard/netproto/listener.h"

#include <sys/socket.h>

#include <cstdio>

namespace shard::netproto {

namespace asio = boost::asio;

std::shared_ptr<Listener> Listener::create(asio::io_context& context, const asio::ip::tcp::endpoint& endpoint,
                                           ListenerConfig config, std::shared_ptr<const NativeHandlers> native,
                                           std::error_code& error) {
  std::shared_ptr<Listener> listener(new Listener(context, std::move(config), std::move(native)));
  boost::system::error_code e;
  auto& acceptor = listener->acceptor_;
  acceptor.open(endpoint.protocol(), e);
  if (!e) acceptor.set_option(asio::socket_base::reuse_address(true), e);
  if (!e) acceptor.bind(endpoint, e);
  if (!e) acceptor.listen(listener->config_.backlog, e);
  if (!e) listener->port_ = acceptor.local_endpoint(e).port();
  if (!e) listener->fd_ = acceptor.native_handle();
  if (e) {
    error = std::error_code(e.value(), std::system_category());
    return nullptr;
  }
  error.clear();
  return listener;
}

Listener::Listener(asio::io_context& context, ListenerConfig config, std::shared_ptr<const NativeHandlers> native)
    : acceptor_(context), config_(std::move(config)), native_(std::move(native)) {
  instances_.fetch_add(1, std::memory_order_relaxed);
}

void Listener::start() {
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] { self->accept_(); });
}

void Listener::accept_() {
  std::shared_ptr<asio::io_context> peer = config_.connection_context ? config_.connection_context() : nullptr;
  asio::io_context& context = peer ? *peer : static_cast<asio::io_context&>(acceptor_.get_executor().context());
  acceptor_.async_accept(context, [self = shared_from_this(), peer](const boost::system::error_code& error,
                                                                     asio::ip::tcp::socket socket) mutable {
    self->on_accept_(error, std::move(socket), std::move(peer));
  });
}

void Listener::log_(const std::string& line) const {
  if (config_.connection.log) {
    config_.connection.log(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

void Listener::on_accept_(const boost::system::error_code& error, asio::ip::tcp::socket socket,
                          std::shared_ptr<asio::io_context> context) {
  if (error == asio::error::operation_aborted || closed()) return;
  if (error) {
    // EMFILE and friends: this connection is lost, the listener goes on.
    log_("netproto: accept failed: " + error.message());
    return accept_();
  }
  boost::system::error_code e;
  const std::string address = socket.remote_endpoint(e).address().to_string();
  std::string refused;
  {
    std::lock_guard lock(mutex_);
    if (per_address_[address] >= config_.max_per_address) {
      ++stats_.refused_per_address;
      refused = "netproto: refused a connection from " + address + ": it has " +
                std::to_string(config_.max_per_address) + " open (the per-address limit)";
    } else if (pending_.size() >= config_.max_pending) {
      ++stats_.refused_pending;
      refused = "netproto: refused a connection from " + address + ": " + std::to_string(config_.max_pending) +
                " accepted connections wait to be taken";
    }
  }
  if (!refused.empty()) {
    log_(refused);
    socket.close(e);
    return accept_();
  }
  auto connection = Connection::create(std::move(socket), config_.connection, native_);
  std::vector<Notify> due;
  {
    std::lock_guard lock(mutex_);
    ++per_address_[address];
    ++stats_.accepted;
    ++stats_.open;
    pending_.push_back({std::move(context), connection});
    waiters_.take_all(due);
  }
  std::weak_ptr<Listener> weak = weak_from_this();
  connection->start([weak, address](Connection&) {
    auto self = weak.lock();
    if (self == nullptr) return;
    std::lock_guard lock(self->mutex_);
    if (--self->per_address_[address] == 0) self->per_address_.erase(address);
    --self->stats_.open;
  });
  NotifyList::run_all(due);
  accept_();
}

Listener::Accepted Listener::try_accept() {
  std::lock_guard lock(mutex_);
  if (pending_.empty()) return {};
  Accepted accepted = std::move(pending_.front());
  pending_.pop_front();
  return accepted;
}

std::uint64_t Listener::notify_acceptable(Notify notify) {
  std::uint64_t token;
  {
    std::lock_guard lock(mutex_);
    token = waiters_.next_token();
    if (!closed_ && pending_.empty()) {
      waiters_.add(token, 0, std::move(notify));
      return token;
    }
  }
  notify();
  return token;
}

void Listener::cancel_notify(std::uint64_t token) {
  Notify notify;
  {
    std::lock_guard lock(mutex_);
    notify = waiters_.take(token);
  }
  if (notify) notify();
}

void Listener::cancel_notify_later(std::uint64_t token) {
  asio::post(acceptor_.get_executor(), [self = shared_from_this(), token] { self->cancel_notify(token); });
}

void Listener::close() {
  std::deque<Accepted> pending;
  std::vector<Notify> due;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    pending.swap(pending_);
    waiters_.take_all(due);
  }
  for (Accepted& accepted : pending) accepted.connection->close();
  NotifyList::run_all(due);
  // Refused from now on, not once the IO thread gets to the close: shutting a
  // listening socket down stops it listening (new connections are reset) and
  // ends the accept in flight. A system call on the descriptor, safe from any
  // thread; the Asio object itself is closed on its own thread.
  ::shutdown(fd_, SHUT_RDWR);
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    boost::system::error_code ignored;
    self->acceptor_.close(ignored);
  });
}

bool Listener::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

Listener::Stats Listener::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace shard::netproto
