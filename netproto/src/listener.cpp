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
    admit_(Connection::create(std::move(socket), config_.connection, native_), address, std::move(context));
    return accept_();
  }
  // The handshake runs on the accepted socket's own IO thread (`context`).
  std::weak_ptr<Listener> weak = weak_from_this();
  auto handshake = Handshake::accept(
      std::move(socket), config_.handshake, [weak, address, context](Handshaken result) mutable {
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
        self->admit_(Connection::create(std::move(*result.stream), std::move(config), self->native_), address,
                     std::move(context));
      });
  {
    std::lock_guard lock(mutex_);
    handshakes_.push_back(handshake);
  }
  accept_();
}

void Listener::admit_(std::shared_ptr<Connection> connection, const std::string& address,
                      std::shared_ptr<asio::io_context> context) {
  NotifyList::Due due;
  bool closed;
  {
    std::lock_guard lock(mutex_);
    closed = closed_;  // it finished its handshake as the listener closed
    if (!closed) {
      ++stats_.accepted;
      pending_.push_back({std::move(context), connection});
      waiters_.take_all(due);
    }
  }
  std::weak_ptr<Listener> weak = weak_from_this();
  connection->start([weak, address](Connection&) {
    if (auto self = weak.lock()) self->forget_(address);
  });
  if (closed) connection->close();
  NotifyList::run_all(due);
}

void Listener::forget_(const std::string& address) {
  std::lock_guard lock(mutex_);
  if (--per_address_[address] == 0) per_address_.erase(address);
  --stats_.open;
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
  std::vector<std::weak_ptr<Handshake>> handshakes;
  NotifyList::Due due;
  {
    std::lock_guard lock(mutex_);
    if (closed_) return;
    closed_ = true;
    pending.swap(pending_);
    handshakes.swap(handshakes_);
    waiters_.take_all(due);
  }
  for (Accepted& accepted : pending) accepted.connection->close();
  for (auto& weak : handshakes) {
    if (auto handshake = weak.lock()) handshake->cancel();
  }
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
