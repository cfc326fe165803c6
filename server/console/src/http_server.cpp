#include "http_server.h"

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <type_traits>

namespace shard::console {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

// An open WebSocket: pushes go out in order, inbound messages are read (to
// see pings and the close) and dropped. Stream: tcp_stream or its TLS.
template <class Stream>
class WsSession final : public Pushable, public std::enable_shared_from_this<WsSession<Stream>> {
 public:
  WsSession(std::shared_ptr<HttpServer> server, Stream stream) : server_(std::move(server)), ws_(std::move(stream)) {
    server_->session_started();
  }
  ~WsSession() override {
    if (open_) server_->websocket_closed();
    server_->session_ended();
  }

  void accept(http::request<http::string_body> request, Headers headers) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.set_option(websocket::stream_base::decorator([headers = std::move(headers)](websocket::response_type& r) {
      for (const auto& [name, value] : headers) r.set(name, value);
    }));
    ws_.read_message_max(server_->config().max_ws_message);
    ws_.async_accept(request, [self = this->shared_from_this()](beast::error_code error) {
      if (error) return;
      self->open_ = true;
      self->server_->websocket_opened(self);
      self->read();
      self->flush();
    });
  }

  void push(std::shared_ptr<const std::string> text) override {
    if (closing_) return;
    if (queue_.size() >= server_->config().max_ws_queue) {
      server_->count_ws_dropped();
      return close();
    }
    queue_.push_back(std::move(text));
    if (queue_.size() == 1 && open_) flush();
  }

  void close() override {
    if (closing_) return;
    closing_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).close();
  }

 private:
  void read() {
    ws_.async_read(in_, [self = this->shared_from_this()](beast::error_code error, std::size_t n) {
      self->server_->count_in(n);
      self->in_.consume(self->in_.size());
      if (error) return self->close();
      self->read();
    });
  }

  void flush() {
    if (queue_.empty() || closing_) return;
    ws_.text(true);
    ws_.async_write(asio::buffer(*queue_.front()),
                    [self = this->shared_from_this()](beast::error_code error, std::size_t n) {
                      self->server_->count_out(n);
                      if (error) return self->close();
                      self->queue_.pop_front();
                      self->flush();
                    });
  }

  std::shared_ptr<HttpServer> server_;
  websocket::stream<Stream> ws_;
  beast::flat_buffer in_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  bool open_ = false;
  bool closing_ = false;
};

// One HTTP connection: (TLS handshake,) read a request, queue it, wait for
// the tasklet's answer, write it, and again while keep-alive. On the
// server's IO thread. Stream: tcp_stream or ssl_stream<tcp_stream>.
template <class Stream>
class HttpSession final : public Exchange, public std::enable_shared_from_this<HttpSession<Stream>> {
 public:
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

  HttpSession(std::shared_ptr<HttpServer> server, Stream stream)
      : server_(std::move(server)), stream_(std::move(stream)) {
    server_->session_started();
  }
  ~HttpSession() override { server_->session_ended(); }

  void start() {
    if constexpr (kTls) {
      beast::get_lowest_layer(stream_).expires_after(server_->config().idle);
      stream_.async_handshake(asio::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code e) {
        if (e) {
          self->server_->count_bad();  // not TLS, or no shared cipher: nothing to answer
          return self->close();
        }
        self->read();
      });
    } else {
      read();
    }
  }

  // The tasklet's answer.
  void write(HttpResponse answer) override {
    auto response = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(answer.status), request_.version());
    for (auto& [name, value] : answer.headers) response->set(name, value);
    response->body() = std::move(answer.body);
    response->keep_alive(request_.keep_alive());
    response->prepare_payload();
    send(std::move(response));
  }

  // Hands the connection over to a WebSocket (the tasklet accepted it).
  void upgrade(Headers headers) override {
    beast::get_lowest_layer(stream_).expires_never();  // the WebSocket keeps its own timeouts
    upgraded_ = true;
    auto ws = std::make_shared<WsSession<Stream>>(server_, std::move(stream_));
    ws->accept(std::move(request_), std::move(headers));
  }

  void close() override {
    if (upgraded_) return;  // the stream belongs to its WebSocket now
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->config().max_header_bytes));
    parser_->body_limit(server_->config().max_body_bytes);
    beast::get_lowest_layer(stream_).expires_after(server_->config().idle);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code error, std::size_t n) {
                       self->on_read(error, n);
                     });
  }

  void on_read(beast::error_code error, std::size_t n) {
    server_->count_in(n);
    if (error == http::error::end_of_stream || error == asio::error::operation_aborted) return close();
    if (error == http::error::header_limit) return refuse(http::status::request_header_fields_too_large, error);
    if (error == http::error::body_limit) return refuse(http::status::payload_too_large, error);
    if (error) {
      if (error != beast::error::timeout && error != asio::error::eof && error != asio::error::connection_reset) {
        server_->count_bad();
      }
      return close();
    }
    request_ = parser_->release();
    HttpRequest queued;
    queued.method = std::string(request_.method_string());
    queued.target = std::string(request_.target());
    for (const auto& field : request_) queued.headers.emplace_back(field.name_string(), field.value());
    queued.body = request_.body();
    beast::error_code ignored;
    const tcp::endpoint peer = beast::get_lowest_layer(stream_).socket().remote_endpoint(ignored);
    queued.peer = peer.address().to_string() + ":" + std::to_string(peer.port());
    queued.websocket = websocket::is_upgrade(request_);
    // The tasklet's answer has no deadline here: the idle timer restarts with the write.
    beast::get_lowest_layer(stream_).expires_never();
    server_->queue(std::move(queued), this->shared_from_this());
  }

  // An over-limit request: answered here, then closed (its rest is unread).
  void refuse(http::status status, beast::error_code why) {
    server_->count_bad();
    auto response = std::make_shared<http::response<http::string_body>>(status, 11);
    response->set(http::field::content_type, "text/plain; charset=utf-8");
    response->body() = why.message() + "\n";
    response->keep_alive(false);
    response->prepare_payload();
    send(std::move(response));
  }

  void send(std::shared_ptr<http::response<http::string_body>> response) {
    beast::get_lowest_layer(stream_).expires_after(server_->config().idle);
    http::async_write(stream_, *response,
                      [self = this->shared_from_this(), response](beast::error_code error, std::size_t n) {
                        self->server_->count_out(n);
                        if (error || response->need_eof()) return self->close();
                        self->read();
                      });
  }

  std::shared_ptr<HttpServer> server_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> request_;
  bool upgraded_ = false;
};

using PlainSession = HttpSession<beast::tcp_stream>;
using TlsSession = HttpSession<beast::ssl_stream<beast::tcp_stream>>;

HttpServer::HttpServer(std::shared_ptr<asio::io_context> context, ServerConfig config)
    : context_(std::move(context)), config_(config), acceptor_(*context_) {}

HttpServer::~HttpServer() = default;

std::shared_ptr<HttpServer> HttpServer::start(std::shared_ptr<asio::io_context> context, const tcp::endpoint& endpoint,
                                              ServerConfig config) {
  std::shared_ptr<HttpServer> server(new HttpServer(std::move(context), config));
  if (!config.tls_cert.empty()) {
    // Loaded here, on the caller's thread: a bad file is an error at once (system_error).
    server->tls_ = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
    server->tls_->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                              asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                              asio::ssl::context::no_tlsv1_1);
    server->tls_->use_certificate_chain_file(config.tls_cert);
    server->tls_->use_private_key_file(config.tls_key, asio::ssl::context::pem);
  }
  // Opened here (the caller's thread) so that errors come back at once; no
  // handler runs before accept() is posted.
  server->acceptor_.open(endpoint.protocol());
  server->acceptor_.set_option(tcp::acceptor::reuse_address(true));
  server->acceptor_.bind(endpoint);
  server->acceptor_.listen();
  server->port_ = server->acceptor_.local_endpoint().port();
  asio::post(*server->context_, [server] { server->accept(); });
  return server;
}

void HttpServer::accept() {
  acceptor_.async_accept([self = shared_from_this()](beast::error_code error, tcp::socket socket) {
    if (error == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
    if (!error) {
      ++self->connections_;
      if (self->open_.load() >= self->config_.max_connections) {
        ++self->refused_;  // closed unanswered: an HTTP answer would cost what the limit saves
      } else if (self->tls_ != nullptr) {
        self->open_session<TlsSession>(beast::ssl_stream<beast::tcp_stream>(std::move(socket), *self->tls_));
      } else {
        self->open_session<PlainSession>(beast::tcp_stream(std::move(socket)));
      }
    }
    self->accept();
  });
}

template <class Session, class... Args>
void HttpServer::open_session(Args&&... args) {
  auto session = std::make_shared<Session>(shared_from_this(), std::forward<Args>(args)...);
  std::erase_if(sessions_, [](const auto& s) { return s.expired(); });
  sessions_.push_back(session);
  session->start();
}

void HttpServer::queue(HttpRequest request, std::shared_ptr<Exchange> session) {
  std::unique_lock lock(mutex_);
  if (inbox_.size() >= config_.max_queued || closed_) {
    lock.unlock();
    ++busy_;
    return session->write({503, {{"Content-Type", "text/plain; charset=utf-8"}}, "busy: too many requests queued\n"});
  }
  request.id = next_id_++;
  awaiting_[request.id] = session;
  ++requests_;
  inbox_.push_back(std::move(request));
  fire_notify();
}

void HttpServer::fire_notify() {
  if (!notify_) return;
  Notify notify = std::move(notify_);
  notify_ = nullptr;
  notify_token_ = 0;
  notify();  // completes a wait: only queues it, never runs Python
}

std::optional<HttpRequest> HttpServer::try_next() {
  std::lock_guard lock(mutex_);
  if (inbox_.empty()) return std::nullopt;
  HttpRequest request = std::move(inbox_.front());
  inbox_.pop_front();
  return request;
}

std::uint64_t HttpServer::notify_request(Notify notify) {
  std::lock_guard lock(mutex_);
  const std::uint64_t token = next_token_++;
  notify_ = std::move(notify);
  notify_token_ = token;
  if (!inbox_.empty() || closed_) fire_notify();
  return token;
}

void HttpServer::cancel_notify_later(std::uint64_t token) {
  asio::post(*context_, [self = shared_from_this(), token] {
    std::lock_guard lock(self->mutex_);
    if (self->notify_token_ == token) self->fire_notify();
  });
}

void HttpServer::respond(std::uint64_t id, HttpResponse response) {
  asio::post(*context_, [self = shared_from_this(), id, response = std::move(response)]() mutable {
    auto found = self->awaiting_.find(id);
    if (found == self->awaiting_.end()) return;  // answered already, or its connection is gone
    auto session = std::move(found->second);
    self->awaiting_.erase(found);
    session->write(std::move(response));
  });
}

void HttpServer::upgrade(std::uint64_t id, Headers headers) {
  asio::post(*context_, [self = shared_from_this(), id, headers = std::move(headers)]() mutable {
    auto found = self->awaiting_.find(id);
    if (found == self->awaiting_.end()) return;
    auto session = std::move(found->second);
    self->awaiting_.erase(found);
    session->upgrade(std::move(headers));
  });
}

void HttpServer::websocket_opened(const std::shared_ptr<Pushable>& ws) {
  ++websockets_open_;
  std::erase_if(websockets_, [](const auto& w) { return w.expired(); });
  websockets_.push_back(ws);
}

void HttpServer::broadcast(std::string text) {
  auto shared = std::make_shared<const std::string>(std::move(text));
  asio::post(*context_, [self = shared_from_this(), shared] {
    for (const auto& weak : self->websockets_) {
      if (auto ws = weak.lock()) ws->push(shared);
    }
  });
}

void HttpServer::close() {
  if (closed_.exchange(true)) return;
  {
    std::lock_guard lock(mutex_);
    fire_notify();
  }
  asio::post(*context_, [self = shared_from_this()] {
    beast::error_code ignored;
    self->acceptor_.close(ignored);
    for (const auto& weak : self->sessions_) {
      if (auto session = weak.lock()) session->close();
    }
    for (const auto& weak : self->websockets_) {
      if (auto ws = weak.lock()) ws->close();
    }
    self->awaiting_.clear();
  });
}

ServerStats HttpServer::stats() const {
  ServerStats s;
  s.connections = connections_;
  s.refused = refused_;
  s.requests = requests_;
  s.busy = busy_;
  s.bad_requests = bad_requests_;
  s.ws_dropped = ws_dropped_;
  s.bytes_in = bytes_in_;
  s.bytes_out = bytes_out_;
  s.open = open_;
  s.websockets = websockets_open_;
  return s;
}

}  // namespace shard::console
