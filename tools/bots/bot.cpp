#include "bot.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string_view>

#include "shard/netproto/message_codec.h"
#include "value_codec.h"

namespace shard::bots {

namespace asio = boost::asio;
namespace net = shard::netproto;

namespace {

// The wait, in seconds, that the proxy's refusal in a login storm asks for
// ("... busy with other logins; retry in N s", swarm.py's BUSY); none for any
// other reason, or for an N no int holds (the reason is the server's text).
std::optional<int> busy_retry_s(std::string_view reason) {
  constexpr std::string_view kBusy = "busy with other logins; retry in ";
  const std::size_t at = reason.find(kBusy);
  if (at == std::string_view::npos) return std::nullopt;
  const std::string_view rest = reason.substr(at + kBusy.size());
  if (rest.empty() || rest.front() < '0' || rest.front() > '9') return std::nullopt;
  int seconds = 0;
  const auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), seconds);
  if (error != std::errc() || rest.substr(static_cast<std::size_t>(end - rest.data())).rfind(" s", 0) != 0) {
    return std::nullopt;
  }
  return seconds;
}

std::string seconds_text(double s) {  // Python's %g
  char text[32];
  std::snprintf(text, sizeof text, "%g", s);
  return text;
}

std::chrono::nanoseconds duration_of(double seconds) {
  return std::chrono::nanoseconds(static_cast<std::int64_t>(seconds * 1e9));
}

}  // namespace

Bot::Bot(asio::io_context& context, Swarm& swarm, ThreadStats& stats, int slot)
    : context_(context),
      swarm_(swarm),
      stats_(stats),
      slot_(slot),
      name_(swarm.options.prefix + std::to_string(swarm.options.first + slot)),
      rng_(static_cast<std::uint64_t>(swarm.options.first + slot)),
      handlers_(std::make_shared<net::NativeHandlers>()),
      timer_(context),
      call_timer_(context),
      move_timer_(context),
      heartbeat_timer_(context),
      ping_(context),
      chat_(context),
      trade_arrival_(context) {
  // Every kind: the ones a client receives go to their handler, the others
  // close the connection (an unhandled kind would sit in the receive queue).
  using K = net::MessageKind;
  for (int k = 1; k <= net::kMaxMessageKind; ++k) {
    handlers_->set(static_cast<K>(k), [this, k](net::Connection& connection, const net::Frame&) {
      if (&connection == connection_.get()) {
        violation_("a message of kind " + std::to_string(k) + ", which has no place on a client connection");
      }
    });
  }
  auto route = [this](K kind, void (Bot::*handle)(const net::Frame&)) {
    handlers_->set(kind, [this, handle](net::Connection& connection, const net::Frame& frame) {
      if (&connection == connection_.get()) (this->*handle)(frame);
    });
  };
  route(K::kLoginReply, &Bot::on_login_reply_);
  route(K::kRpcReply, &Bot::on_rpc_reply_);
  route(K::kRpcError, &Bot::on_rpc_error_);
  route(K::kMovement, &Bot::on_movement_);
  route(K::kHeartbeat, &Bot::on_heartbeat_);
  route(K::kClose, &Bot::on_close_frame_);
  // Parsed (a payload that does not parse is a violation) and otherwise ignored.
  handlers_->set(K::kNotification, [this](net::Connection& connection, const net::Frame& frame) {
    wire::Notification note;
    if (&connection != connection_.get() || !parse_(frame, note) || !stats_.recording) return;
    if (note.service() == "market" && note.event() == "trade") ++stats_.phase.trade_notifications;
    if (note.service() == "chat" && note.event() == "message") ++stats_.phase.chat_deliveries;
  });
  handlers_->set(K::kSessionChange, [this](net::Connection& connection, const net::Frame& frame) {
    wire::SessionChange change;
    if (&connection == connection_.get()) parse_(frame, change);
  });
}

void Bot::log_(const std::string& what) const { std::fprintf(stderr, "shard-bots: %s: %s\n", name_.c_str(), what.c_str()); }

// --- the login ------------------------------------------------------------------

void Bot::start() {
  const double ramp = swarm_.options.ramp;
  timer_.expires_after(duration_of(ramp > 0 ? std::uniform_real_distribution<double>(0, ramp)(rng_) : 0.0));
  timer_.async_wait([this](const boost::system::error_code& error) {
    if (error || state_ != State::kIdle) return;
    setup_started_ = Clock::now();
    connect_();
  });
}

void Bot::connect_() {
  const BotOptions& o = swarm_.options;
  state_ = State::kConnecting;
  const std::uint64_t attempt = ++attempt_id_;
  close_reason_.clear();
  socket_ = std::make_unique<asio::ip::tcp::socket>(context_);
  boost::system::error_code error;
  asio::ip::tcp::endpoint server(asio::ip::make_address(o.host, error), o.port);
  if (error) return give_up_("Disconnected: the connection failed: the host " + o.host + " is no address");
  socket_->open(server.protocol(), error);
  if (!error) socket_->set_option(asio::ip::tcp::no_delay(true), error);
  if (const std::string source = source_address(o, o.first + slot_); !error && !source.empty()) {
    socket_->bind({asio::ip::make_address(source), 0}, error);
  }
  if (error) return attempt_failed_("Disconnected: the connection failed: " + error.message());
  // One deadline for the connection, the handshake and the login reply, as
  // each of game_client's steps has the timeout.
  timer_.expires_after(duration_of(o.timeout));
  timer_.async_wait([this, attempt](const boost::system::error_code& e) {
    if (e || attempt != attempt_id_ || (state_ != State::kConnecting && state_ != State::kLoggingIn)) return;
    attempt_failed_(state_ == State::kLoggingIn
                        ? "CallTimeout: login: no LoginReply within " + seconds_text(swarm_.options.timeout) + " s"
                        : "CallTimeout: the connection: no handshake within " + seconds_text(swarm_.options.timeout) +
                              " s");
  });
  socket_->async_connect(server, [this, attempt](const boost::system::error_code& e) {
    if (attempt != attempt_id_ || state_ != State::kConnecting) return;
    if (e) return attempt_failed_("Disconnected: the connection failed: " + e.message());
    handshake_ = net::Handshake::connect(std::move(*socket_), swarm_.handshake,
                                         [this, attempt](net::Handshaken result) {
                                           on_handshake_(attempt, std::move(result));
                                         });
  });
}

void Bot::on_handshake_(std::uint64_t attempt, net::Handshaken result) {
  if (attempt != attempt_id_ || state_ != State::kConnecting) return;
  handshake_.reset();
  if (!result.stream) return attempt_failed_("Disconnected: the handshake failed: " + result.error);
  net::ConnectionConfig config;
  net::configure(config, result.negotiated);
  connection_ = net::Connection::create(std::move(*result.stream), std::move(config), handlers_);
  connection_->start([this](net::Connection& connection) { on_closed_(connection); });
  state_ = State::kLoggingIn;
  wire::LoginRequest request;
  request.set_user_name(name_);
  request.set_credential(swarm_.options.password);
  send_(net::FrameHeader{}, request);
  if (const std::uint32_t ms = connection_->negotiated().heartbeat_interval_ms; ms > 0) {
    heartbeat_timer_.expires_after(std::chrono::milliseconds(ms));
    heartbeat_timer_.async_wait([this, attempt](const boost::system::error_code& e) {
      if (!e && attempt == attempt_id_) heartbeat_due_();
    });
  }
}

void Bot::attempt_failed_(const std::string& message, double busy_wait_s) {
  drop_connection_();
  if (++attempt_ == kLoginAttempts) return give_up_(message);
  stats_.login_retry.error(message.substr(0, 200));
  state_ = State::kIdle;
  const double wait = busy_wait_s >= 0 ? busy_wait_s * std::uniform_real_distribution<double>(1.0, 2.0)(rng_)
                                       : std::uniform_real_distribution<double>(0.5, 1.0)(rng_) *
                                             std::ldexp(1.0, attempt_ - 1);
  timer_.expires_after(duration_of(wait));
  timer_.async_wait([this, attempt = attempt_id_](const boost::system::error_code& e) {
    if (!e && attempt == attempt_id_ && state_ == State::kIdle) connect_();
  });
}

void Bot::give_up_(const std::string& message) {
  drop_connection_();
  stats_.login.error(message.substr(0, 200));
  state_ = State::kDone;
  swarm_.settled.fetch_add(1, std::memory_order_relaxed);
}

void Bot::drop_connection_() {
  ++attempt_id_;  // whatever the old attempt still has in flight is ignored
  timer_.cancel();
  call_timer_.cancel();
  heartbeat_timer_.cancel();
  call_id_ = 0;
  if (handshake_) handshake_->cancel();
  handshake_.reset();
  if (socket_ && socket_->is_open()) {
    boost::system::error_code ignored;
    socket_->close(ignored);
  }
  // Moved out first: its on_close (posted) then finds it is no longer this bot's.
  if (auto connection = std::move(connection_)) connection->close();
}

void Bot::start_nothing_new_() {
  move_timer_.cancel();
  for (Arrival* a : {&ping_, &chat_, &trade_arrival_}) a->timer.cancel();
  waiting_.clear();
}

void Bot::finish() {
  finishing_ = true;
  start_nothing_new_();
  if (state_ != State::kPlaying || call_id_ == 0) stop();
}

void Bot::stop() {
  if (state_ == State::kPlaying) {
    swarm_.connected.fetch_sub(1, std::memory_order_relaxed);
    if (call_id_ != 0 && step_ == Step::kTrade) trade_unanswered_("the run ended before the answer");
  }
  state_ = State::kDone;
  start_nothing_new_();
  drop_connection_();
}

// --- frames from the server ------------------------------------------------------

template <class Message>
bool Bot::parse_(const net::Frame& frame, Message& message) {
  try {
    net::parse_message(frame, message);
    return true;
  } catch (const net::ProtocolError& e) {
    violation_(std::string("a bad message: ") + e.what());
    return false;
  }
}

void Bot::violation_(const std::string& reason) {
  log_("the server broke the protocol: " + reason + "; closing the connection");
  close_reason_ = "protocol error: " + reason;
  connection_->close(net::CloseReason::kProtocolError, reason);
  lost_();  // now: the frames after it in the same read are ignored
}

void Bot::on_login_reply_(const net::Frame& frame) {
  wire::LoginReply reply;
  if (!parse_(frame, reply)) return;
  if (state_ != State::kLoggingIn) return violation_("a LoginReply after the login");
  timer_.cancel();
  if (!reply.ok()) {
    const std::string message = "LoginFailed: login refused: " + reply.reason();
    if (const auto wait = busy_retry_s(reply.reason())) return attempt_failed_(message, *wait);
    return give_up_(message);
  }
  state_ = State::kSetup;
  call_(Step::kList, "characters", "list");
}

void Bot::on_rpc_reply_(const net::Frame& frame) {
  wire::RpcReply reply;
  if (!parse_(frame, reply) || reply.call_id() != call_id_ || call_id_ == 0) return;  // late: dropped
  answered_(step_, &reply.result());
}

void Bot::on_rpc_error_(const net::Frame& frame) {
  wire::RpcError error;
  if (!parse_(frame, error) || error.call_id() != call_id_ || call_id_ == 0) return;
  const std::string kind = wire::RpcError_Kind_IsValid(error.kind())
                               ? wire::RpcError_Kind_Name(error.kind())
                               : "KIND_" + std::to_string(error.kind());
  // No answer says whether it ran, or the market asks for it again later (market_turns.MarketBusy).
  const bool retriable = error.kind() == wire::RpcError::TIMEOUT || error.kind() == wire::RpcError::UNAVAILABLE ||
                         (error.kind() == wire::RpcError::APPLICATION && error.type() == "MarketBusy");
  call_failed_(step_, "RpcError: " + kind + (error.type().empty() ? "" : " " + error.type()) + ": " + error.message(),
               retriable);
}

void Bot::on_movement_(const net::Frame& frame) {
  wire::Movement move;
  if (!parse_(frame, move) || !stats_.recording) return;
  ++stats_.phase.move_updates;
  if (auto seconds = swarm_.moves.delivered(move.entity_id(), move.sequence(), Clock::now())) {
    stats_.phase.move_delivery.add(*seconds);
  }
}

void Bot::on_heartbeat_(const net::Frame& frame) {
  wire::Heartbeat beat;
  if (!parse_(frame, beat) || beat.echo()) return;
  beat.set_echo(true);
  net::FrameHeader header;
  header.priority = net::Priority::kControl;
  send_(header, beat);
}

void Bot::on_close_frame_(const net::Frame& frame) {
  wire::Close close;
  if (parse_(frame, close)) close_reason_ = close.reason().empty() ? "closed" : close.reason();
}

void Bot::on_closed_(net::Connection& connection) {
  if (&connection == connection_.get()) lost_();  // not one this bot dropped itself
}

void Bot::lost_() {
  std::string message = "Disconnected: the server closed the connection";
  if (!close_reason_.empty()) message += ": " + close_reason_;
  switch (state_) {
    case State::kLoggingIn:
      return attempt_failed_(message);
    case State::kSetup:
      return give_up_(message);
    case State::kPlaying:
      if (call_id_ != 0 && step_ == Step::kTrade) trade_unanswered_(message);
      stats_.error(&PhaseStats::connection, message.substr(0, 200));
      log_("lost its connection: " + message);
      stop();
      return;
    default:
      return;
  }
}

// --- calls -------------------------------------------------------------------------

std::string Bot::call_name_(Step step) const {
  switch (step) {
    case Step::kList: return "characters.list";
    case Step::kCreate: return "characters.create";
    case Step::kSelect: return "characters.select";
    case Step::kChat: return "chat.send";
    case Step::kTrade: return "market.place";
    default: return "ping.ping";
  }
}

void Bot::call_(Step step, const char* service, const char* method, const std::vector<wire::Value>& args) {
  wire::RpcCall call;
  call_id_ = next_call_id_++;
  step_ = step;
  call.set_call_id(call_id_);
  call.set_service(service);
  call.set_method(method);
  call.set_timeout_ms(std::max<std::uint32_t>(1, static_cast<std::uint32_t>(swarm_.options.timeout * 1000)));
  for (const wire::Value& arg : args) *call.add_args() = arg;
  net::FrameHeader header;
  header.dest_kind = net::DestKind::kSol;
  call_sent_ = Clock::now();
  send_(header, call);
  call_timer_.expires_after(duration_of(swarm_.options.timeout));
  call_timer_.async_wait([this, id = call_id_](const boost::system::error_code& e) {
    if (e || id != call_id_) return;
    call_failed_(step_,
                 "CallTimeout: " + call_name_(step_) + ": no answer within " + seconds_text(swarm_.options.timeout) +
                     " s",
                 true);
  });
}

void Bot::answered_(Step step, const wire::Value* result) {
  call_id_ = 0;
  call_timer_.cancel();
  switch (step) {
    case Step::kList: {
      const auto first = first_item(*result);
      if (!first) return give_up_("ProtocolError: characters.list answered no list");
      if (*first == nullptr) {
        std::vector<wire::Value> name(1);
        set_string(name[0], name_);
        return call_(Step::kCreate, "characters", "create", name);
      }
      result = *first;
      [[fallthrough]];
    }
    case Step::kCreate: {
      const auto id = as_int(field(*result, "character_id"));
      if (!id) return give_up_("ProtocolError: " + call_name_(step) + " answered no character_id");
      character_ = *id;
      std::vector<wire::Value> arg(1);
      set_int(arg[0], *id);
      return call_(Step::kSelect, "characters", "select", arg);
    }
    case Step::kSelect:
      return selected_(*result);
    case Step::kPing: {
      const auto now = Clock::now();
      stats_.record_ping(std::chrono::duration<double>(now - call_sent_).count(), now);
      return next_waiting_();
    }
    case Step::kChat:
      if (stats_.recording) stats_.phase.chat.add(std::chrono::duration<double>(Clock::now() - call_sent_).count());
      return next_waiting_();
    case Step::kTrade:
      trade_answered_(*result);
      return next_waiting_();
    case Step::kNone:
      return;
  }
}

void Bot::call_failed_(Step step, const std::string& message, bool retriable) {
  call_id_ = 0;
  call_timer_.cancel();
  switch (step) {
    case Step::kPing:
      stats_.error(&PhaseStats::ping, message.substr(0, 200));
      return next_waiting_();
    case Step::kChat:
      stats_.error(&PhaseStats::chat, message.substr(0, 200));
      return next_waiting_();
    case Step::kTrade:
      if (retriable && trade_sends_ < kTradeAttempts) return send_trade_();  // the same request id
      stats_.error(&PhaseStats::trade, message.substr(0, 200));
      // A refusal says nothing of an earlier send that got no answer: it may have run.
      if (retriable || trade_sends_ > 1) {
        trade_unanswered_(message);
      } else {
        swarm_.trades.refused(trade_, message);
      }
      return next_waiting_();
    default:
      return give_up_(message);
  }
}

void Bot::selected_(const wire::Value& attributes) {
  const auto ship = as_int(field(attributes, "ship_id"));
  ship_ = ship ? static_cast<std::uint64_t>(*ship) : 0;
  position_ = as_vector3(field(attributes, "ship_position")).value_or(std::array<double, 3>{});
  stats_.login.add(std::chrono::duration<double>(Clock::now() - setup_started_).count());
  if (ship_ != 0) swarm_.moves.add_ship(ship_, static_cast<std::size_t>(slot_));
  swarm_.connected.fetch_add(1, std::memory_order_relaxed);
  swarm_.settled.fetch_add(1, std::memory_order_relaxed);
  play_();
}

// --- playing -------------------------------------------------------------------------

std::array<double, 3> Bot::heading_() {
  std::normal_distribution<double> gauss(0, 1);
  std::array<double, 3> v{gauss(rng_), gauss(rng_), gauss(rng_)};
  const double norm = std::max(1e-9, std::sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]));
  for (double& c : v) c *= swarm_.options.speed / norm;
  return v;
}

void Bot::play_() {
  state_ = State::kPlaying;
  const auto now = Clock::now();
  last_move_ = now;
  velocity_ = heading_();
  const BotOptions& o = swarm_.options;
  // Moves at a fixed period (a client's tick) from a random phase; pings as Poisson arrivals.
  if (o.move_rate > 0) {
    move_at_ = now + duration_of(std::uniform_real_distribution<double>(0, 1.0 / o.move_rate)(rng_));
    move_timer_.expires_at(move_at_);
    move_timer_.async_wait([this](const boost::system::error_code& e) {
      if (!e) move_();
    });
  }
  for (const Step op : {Step::kPing, Step::kChat, Step::kTrade}) {
    arrival_(op).at = now;
    if (rate_(op) > 0) arm_(op);
  }
}

void Bot::move_() {
  if (state_ != State::kPlaying || finishing_) return;
  move_at_ += duration_of(1.0 / swarm_.options.move_rate);
  move_timer_.expires_at(move_at_);
  move_timer_.async_wait([this](const boost::system::error_code& e) {
    if (!e) move_();
  });
  if (ship_ == 0) return;
  const auto now = Clock::now();
  // Where the ship got to at its velocity over the real time since the last
  // move (at most 5 s: the sol's speed check banks at most 1 s).
  const double dt = std::min(5.0, std::chrono::duration<double>(now - last_move_).count());
  last_move_ = now;
  if (std::uniform_real_distribution<double>(0, 1)(rng_) < 0.1) velocity_ = heading_();
  for (int i = 0; i < 3; ++i) position_[i] += velocity_[i] * dt;
  wire::Movement move;
  move.set_entity_id(ship_);
  move.set_x(position_[0]);
  move.set_y(position_[1]);
  move.set_z(position_[2]);
  move.set_vx(static_cast<float>(velocity_[0]));
  move.set_vy(static_cast<float>(velocity_[1]));
  move.set_vz(static_cast<float>(velocity_[2]));
  move.set_sequence(++sequence_);
  move.set_timestamp_us(static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count()));
  net::FrameHeader header;
  header.native = true;
  header.priority = net::Priority::kHigh;
  header.dest_kind = net::DestKind::kEntity;
  header.target_id = ship_;
  send_(header, move);
  swarm_.moves.sent(static_cast<std::size_t>(slot_), sequence_, now);
  if (stats_.recording) ++stats_.phase.moves_sent;
}

Bot::Arrival& Bot::arrival_(Step op) { return op == Step::kPing ? ping_ : op == Step::kChat ? chat_ : trade_arrival_; }

double Bot::rate_(Step op) const {
  const BotOptions& o = swarm_.options;
  return op == Step::kPing ? o.ping_rate : op == Step::kChat ? o.chat_rate : o.trade_rate;
}

// The next arrival after the last one, or after now for a bot that fell
// behind: the missed ones are not fired in a burst (swarm.py's behave()).
void Bot::arm_(Step op) {
  Arrival& arrival = arrival_(op);
  arrival.at = std::max(arrival.at, Clock::now()) + duration_of(std::exponential_distribution<double>(rate_(op))(rng_));
  arrival.timer.expires_at(arrival.at);
  arrival.timer.async_wait([this, op](const boost::system::error_code& e) {
    if (!e) due_(op);
  });
}

void Bot::due_(Step op) {
  // finishing_: a timer that fired just before finish() cancelled it.
  if (state_ != State::kPlaying || finishing_) return;
  arm_(op);
  // One call in flight, as the Python bot's blocking calls: a due op waits
  // for the answer, and one already waiting is not doubled.
  if (call_id_ == 0) return send_(op);
  if (std::find(waiting_.begin(), waiting_.end(), op) == waiting_.end()) waiting_.push_back(op);
}

void Bot::next_waiting_() {
  if (finishing_ && state_ == State::kPlaying) return stop();  // that call was the last
  if (waiting_.empty() || state_ != State::kPlaying) return;
  const Step op = waiting_.front();
  waiting_.pop_front();
  send_(op);
}

void Bot::send_(Step op) {
  if (op == Step::kPing) return call_(Step::kPing, "ping", "ping");
  if (op == Step::kChat) {
    std::vector<wire::Value> args(2);
    set_string(args[0], "local");
    set_string(args[1], name_ + " says hello");  // swarm.py's line
    return call_(Step::kChat, "chat", "send", args);
  }
  // A new request: a side, a quantity of 1-5 and a price within 10% of the
  // options', as swarm.py's Bot.trade, and an id no other request has.
  const BotOptions& o = swarm_.options;
  const std::int64_t spread = o.trade_price / 10;
  char id[33];
  std::snprintf(id, sizeof id, "%016llx%08x%08x", static_cast<unsigned long long>(swarm_.run_id),
                static_cast<unsigned>(o.first + slot_), ++trades_started_);
  const std::int64_t type = o.trade_type + std::uniform_int_distribution<std::int64_t>(0, o.trade_types - 1)(rng_);
  trade_ = TradeRequest{character_, id, std::uniform_int_distribution<int>(0, 1)(rng_) == 0, type,
                        std::uniform_int_distribution<std::int64_t>(1, 5)(rng_),
                        std::max<std::int64_t>(1, o.trade_price +
                                                      std::uniform_int_distribution<std::int64_t>(-spread, spread)(rng_))};
  trade_sends_ = 0;
  trade_started_ = Clock::now();
  send_trade_();
}

void Bot::send_trade_() {
  ++trade_sends_;
  std::vector<wire::Value> args(5);
  set_string(args[0], trade_.buy ? "buy" : "sell");
  set_int(args[1], trade_.type_id);
  set_int(args[2], trade_.quantity);
  set_int(args[3], trade_.price);
  set_string(args[4], trade_.request_id);
  call_(Step::kTrade, "market", "place", args);
}

void Bot::trade_answered_(const wire::Value& result) {
  const auto filled = as_int(field(result, "filled"));
  const wire::Value* order = field(result, "order_id");
  const wire::Value* trades = field(result, "trades");
  if (!filled || order == nullptr || (!order->has_null_value() && !as_int(order)) || trades == nullptr ||
      !trades->has_list_value()) {
    // Logged as unanswered: the audit then accepts either a row or none.
    stats_.error(&PhaseStats::trade, "ProtocolError: market.place answered no order_id, filled and trades");
    return trade_unanswered_("an answer without order_id, filled and trades");
  }
  swarm_.trades.answered(trade_, TradeAnswer{as_int(order), *filled, trades->list_value().items_size()});
  if (stats_.recording) stats_.phase.trade.add(std::chrono::duration<double>(Clock::now() - trade_started_).count());
}

void Bot::trade_unanswered_(const std::string& message) { swarm_.trades.unknown(trade_, message); }

void Bot::heartbeat_due_() {
  if (!connection_) return;
  const auto interval = std::chrono::milliseconds(connection_->negotiated().heartbeat_interval_ms);
  const auto now = Clock::now();
  if (now - last_send_ >= interval) {
    wire::Heartbeat beat;
    beat.set_nonce(++nonce_);
    beat.set_sent_us(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count()));
    net::FrameHeader header;
    header.priority = net::Priority::kControl;
    send_(header, beat);
  }
  heartbeat_timer_.expires_at(last_send_ + interval);
  heartbeat_timer_.async_wait([this, attempt = attempt_id_](const boost::system::error_code& e) {
    if (!e && attempt == attempt_id_) heartbeat_due_();
  });
}

template <class Message>
void Bot::send_(net::FrameHeader header, const Message& message) {
  if (!connection_) return;
  header.kind = net::kind_of<Message>;
  out_.resize(message.ByteSizeLong());
  message.SerializeWithCachedSizesToArray(out_.data());
  last_send_ = Clock::now();
  // A send that fails closed the connection: on_closed_ says what it means now.
  connection_->send(header, out_);
}

}  // namespace shard::bots
