#include "shard/netproto/listener.h"

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
  acceptor_.async_accept([self = shared_from_this()](const boost::system::error_code& error, asio::ip::tcp::socket socket) {
    self->on_accept_(error, std::move(socket));
  });
}

void Listener::log_(const std::string& line) const {
  if (config_.connection.log) {
    config_.connection.log(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

void Listener::on_accept_(const boost::system::error_code& error, asio::ip::tcp::socket socket) {
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
    } else {
      // Handshakes in flight count: clients that connect and stay silent
      // cannot pile up past the bound.
      std::erase_if(handshakes_, [](const std::weak_ptr<Handshake>& h) { return h.expired(); });
      if (pending_.size() + handshakes_.size() >= config_.max_pending) {
        ++stats_.refused_pending;
        refused = "netproto: refused a connection from " + address + ": " + std::to_string(config_.max_pending) +
                  " accepted connections wait to be taken or to finish their handshake";
      }
    }
  }
  if (!refused.empty()) {
    log_(refused);
    socket.close(e);
    return accept_();
  }
  {
    // Counted from now: a client stuck in its handshake holds its address's slot.
    std::lock_guard lock(mutex_);
    ++per_address_[address];
    ++stats_.open;
  }
  if (config_.handshake == nullptr) {
    admit_(Connection::create(std::move(socket), config_.connection, native_), address);
    return accept_();
  }
  std::weak_ptr<Listener> weak = weak_from_this();
  auto handshake = Handshake::accept(std::move(socket), config_.handshake, [weak, address](Handshaken result) {
    auto self = weak.lock();
    if (self == nullptr) return;
    if (!result.stream) {
      {
        std::lock_guard lock(self->mutex_);
        ++self->stats_.handshake_failed;
      }
      return self->forget_(address);
    }
    ConnectionConfig config = self->config_.connection;
    configure(config, result.negotiated);
    self->admit_(Connection::create(std::move(*result.stream), std::move(config), self->native_), address);
  });
  {
    std::lock_guard lock(mutex_);
    handshakes_.push_back(handshake);
  }
  accept_();
}

void Listener::admit_(std::shared_ptr<Connection> connection, const std::string& address) {
  std::vector<Notify> due;
  bool closed;
  {
    std::lock_guard lock(mutex_);
    closed = closed_;  // it finished its handshake as the listener closed
    if (!closed) {
      ++stats_.accepted;
      pending_.push_back(connection);
      for (auto& [token, notify] : waiters_) due.push_back(std::move(notify));
      waiters_.clear();
    }
  }
  std::weak_ptr<Listener> weak = weak_from_this();
  connection->start([weak, address](Connection&) {
    if (auto self = weak.lock()) self->forget_(address);
  });
  if (closed) connection->close();
  for (Notify& notify : due) notify();
}

void Listener::forget_(const std::string& address) {
  std::lock_guard lock(mutex_);
  if (--per_address_[address] == 0) per_address_.erase(address);
  --stats_.open;
}

std::shared_ptr<Connection> Listener::try_accept() {
  std::lock_guard lock(mutex_);
  if (pending_.empty()) return nullptr;
  auto connection = std::move(pending_.front());
  pending_.pop_front();
  return connection;
}

std::uint64_t Listener::notify_acceptable(Notify notify) {
  std::uint64_t token;
  {
    std::lock_guard lock(mutex_);
    token = next_token_++;
    if (!closed_ && pending_.empty()) {
      waiters_.emplace_back(token, std::move(notify));
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
    for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
      if (it->first != token) continue;
      notify = std::move(it->second);
      waiters_.erase(it);
      break;
    }
  }
  if (notify) notify();
}

void Listener::cancel_notify_later(std::uint64_t token) {
  asio::post(acceptor_.get_executor(), [self = shared_from_this(), token] { self->cancel_notify(token); });
}

void Listener::close() {
  std::deque<std::shared_ptr<Connection>> pending;
  std::vector<std::weak_ptr<Handshake>> handshakes;
  std::vector<Notify> due;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    pending.swap(pending_);
    handshakes.swap(handshakes_);
    for (auto& [token, notify] : waiters_) due.push_back(std::move(notify));
    waiters_.clear();
  }
  for (auto& connection : pending) connection->close();
  for (auto& weak : handshakes) {
    if (auto handshake = weak.lock()) handshake->cancel();
  }
  for (Notify& notify : due) notify();
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
