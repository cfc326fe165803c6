#pragma once
// One bot: swarm.py's Bot (tools/client/swarm.py), as a state machine on its
// IO thread's io_context. It connects (from its source address), runs the
// handshake (TLS verified against the CA), logs in with swarm.py's retries,
// lists, creates if need be and selects its character, then moves at a fixed
// period and pings, chats (a line in local chat) and trades as Poisson
// arrivals, one call in flight: an op that falls due meanwhile waits its turn
// (at most one of each kind, as the Python bot's loop). A trade carries its
// own request id and is sent again with it when no answer says whether it
// ran (timeout, UNAVAILABLE) or the market asks for it later (MarketBusy), as
// a client must for the market's idempotency; its outcome goes to the trade
// log for the market audit. Every frame from the server arrives through the
// connection's native handlers on this same thread, so nothing here takes a
// lock; what it measures goes to its thread's ThreadStats. A payload that
// does not parse, or a kind a client never receives, closes its connection
// with a logged reason.

#include <utility>  // before Asio: Boost 1.74's Asio with GCC 12 in C++20 needs it

#include <boost/asio.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bot_options.h"
#include "move_table.h"
#include "shard/netproto/connection.h"
#include "shard/netproto/handshake.h"
#include "shard/netproto/native_handlers.h"
#include "shard/wire/value.pb.h"
#include "thread_stats.h"
#include "trade_log.h"

namespace shard::bots {

inline constexpr int kLoginAttempts = 4;  // swarm.py's LOGIN_ATTEMPTS
inline constexpr int kTradeAttempts = 3;  // swarm.py's TRADE_ATTEMPTS: sends of one request id

// What every bot shares: read-only once the bots run, besides the atomics and the table.
struct Swarm {
  const BotOptions& options;
  std::shared_ptr<const netproto::ClientHandshake> handshake;
  MoveTable& moves;
  TradeLog& trades;
  std::uint64_t run_id;  // random per run: the trades' request ids never meet an earlier run's
  std::atomic<int> connected{0};  // logged in, character selected, still playing
  std::atomic<int> settled{0};    // logged in or gave up
};

class Bot {
 public:
  using Clock = std::chrono::steady_clock;

  // Bot `slot` of the run: account PREFIX(first + slot).
  Bot(boost::asio::io_context& context, Swarm& swarm, ThreadStats& stats, int slot);
  Bot(const Bot&) = delete;
  Bot& operator=(const Bot&) = delete;

  // On its thread: waits its share of the ramp, then logs in and plays.
  void start();
  // On its thread: the run is ending (swarm.py's stopping): no new op, and
  // the call in flight, a trade with its further sends too, runs to its
  // answer, then stop(); at once when none is in flight.
  void finish();
  // On its thread: timers cancelled, the connection closed; nothing more
  // happens. A trade still in flight is logged unknown.
  void stop();
  // On its thread: stopped, or gave up its login.
  bool done() const { return state_ == State::kDone; }

 private:
  enum class State { kIdle, kConnecting, kLoggingIn, kSetup, kPlaying, kDone };
  enum class Step { kNone, kList, kCreate, kSelect, kPing, kChat, kTrade };
  // A Poisson op's next arrival, and the timer that waits for it.
  struct Arrival {
    explicit Arrival(boost::asio::io_context& context) : timer(context) {}
    Clock::time_point at;
    boost::asio::steady_timer timer;
  };

  // Login: one attempt, its failure (retried as swarm.py's Bot.log_in), giving up.
  void connect_();
  void on_handshake_(std::uint64_t attempt, netproto::Handshaken result);
  void attempt_failed_(const std::string& message, double busy_wait_s = -1);
  void give_up_(const std::string& message);
  void drop_connection_();

  // The frames a client receives (native handlers, this thread).
  void on_login_reply_(const netproto::Frame& frame);
  void on_rpc_reply_(const netproto::Frame& frame);
  void on_rpc_error_(const netproto::Frame& frame);
  void on_movement_(const netproto::Frame& frame);
  void on_heartbeat_(const netproto::Frame& frame);
  void on_close_frame_(const netproto::Frame& frame);
  void on_closed_(netproto::Connection& connection);
  // The connection is gone (closed by the server, or for its violation):
  // a retry, a login failure or a lost connection, by the state.
  void lost_();
  // The server broke the protocol: logged, the connection closed.
  void violation_(const std::string& reason);
  template <class Message>
  bool parse_(const netproto::Frame& frame, Message& message);

  // Calls: one in flight (the setup's, then one ping, chat or trade at a time).
  // `retriable`: no answer says whether it ran (a timeout, UNAVAILABLE), or
  // the market asks for it again later (MarketBusy).
  void call_(Step step, const char* service, const char* method, const std::vector<wire::Value>& args = {});
  void answered_(Step step, const wire::Value* result);
  void call_failed_(Step step, const std::string& message, bool retriable);
  void selected_(const wire::Value& attributes);

  // Playing.
  void play_();
  // No move or Poisson op from now on (their timers cancelled), none waiting.
  void start_nothing_new_();
  void move_();
  // A Poisson op (ping, chat or trade) fell due: sent now, or waits its turn.
  void due_(Step op);
  void arm_(Step op);
  Arrival& arrival_(Step op);
  double rate_(Step op) const;
  void next_waiting_();
  void send_(Step op);
  void send_trade_();
  void trade_answered_(const wire::Value& result);
  void trade_unanswered_(const std::string& message);
  void heartbeat_due_();
  std::array<double, 3> heading_();

  template <class Message>
  void send_(netproto::FrameHeader header, const Message& message);
  void log_(const std::string& what) const;
  std::string call_name_(Step step) const;

  boost::asio::io_context& context_;
  Swarm& swarm_;
  ThreadStats& stats_;
  const int slot_;
  const std::string name_;
  std::mt19937_64 rng_;
  std::shared_ptr<netproto::NativeHandlers> handlers_;
  State state_ = State::kIdle;
  bool finishing_ = false;  // finish(): the call in flight is the last

  // The login.
  std::uint64_t attempt_id_ = 0;  // the current attempt's (older callbacks are ignored)
  int attempt_ = 0;
  Clock::time_point setup_started_;
  std::unique_ptr<boost::asio::ip::tcp::socket> socket_;
  std::shared_ptr<netproto::Handshake> handshake_;
  std::shared_ptr<netproto::Connection> connection_;
  std::string close_reason_;  // the server's Close frame
  boost::asio::steady_timer timer_;  // ramp, attempt deadline, retry wait

  // Calls.
  std::uint64_t next_call_id_ = 1, call_id_ = 0;  // call_id_: the one in flight, 0: none
  std::deque<Step> waiting_;                      // ops due while a call was in flight
  Step step_ = Step::kNone;
  Clock::time_point call_sent_;
  boost::asio::steady_timer call_timer_;

  // Playing.
  std::int64_t character_ = 0;
  std::uint64_t ship_ = 0;
  std::array<double, 3> position_{}, velocity_{};
  std::uint32_t sequence_ = 0;
  Clock::time_point last_move_, move_at_, last_send_;
  boost::asio::steady_timer move_timer_, heartbeat_timer_;
  Arrival ping_, chat_, trade_arrival_;
  // The trade in flight (its sends, and when the first went).
  TradeRequest trade_;
  int trade_sends_ = 0;
  std::uint32_t trades_started_ = 0;
  Clock::time_point trade_started_;
  std::uint64_t nonce_ = 0;
  std::vector<std::uint8_t> out_;  // a message's bytes, reused
};

}  // namespace shard::bots
