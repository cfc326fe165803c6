// shard-bots: the native bot driver of swarm.py --native (tools/client/README.md).
// T IO threads, each an io_context owning its bots (bot.h); everything a bot
// does runs on its thread, and what the bots measure stays in their thread's
// ThreadStats until the parent asks. The parent (swarm.py) writes commands on
// stdin, one per line, and reads one JSON object per line on stdout; logs go
// to stderr:
//
//   (at start)  {"event":"started","connected":N,"setup":{"login":HIST,"login_retry":HIST}}
//   phase NAME  recording starts (nothing is recorded outside a phase)
//   end         {"event":"phase","strategy":NAME,"duration_s":..,"swarm_cpu_s":..,"counts":{..},
//                "ops":{"ping":HIST,"chat":HIST,"trade":HIST,"move_delivery":HIST,"connection":HIST},
//                "ping_series":[[t_s,ms],..]}
//   progress    {"event":"progress","connected":N,"seconds":..,"counts":{..},"ops":{OP:{count,errors,p50_ms,p99_ms}}}
//   quit / EOF  no new op; each bot's call in flight answered (20 s at most),
//               then every bot stopped, {"event":"stopped","max_rss_kib":..}, exit 0
//
// HIST is swarm_stats.Histogram's raw form (latency_histogram.h). With
// --trade-log, each trade's outcome is appended there (trade_log.h).

#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <future>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bot.h"
#include "bot_options.h"
#include "json_text.h"
#include "shard/netproto/tls.h"

namespace bots = shard::bots;
namespace net = shard::netproto;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

// How long quit waits for the bots' calls in flight (swarm.py's STOP_GRACE_S).
constexpr std::chrono::seconds kStopGrace{20};

// One IO thread: its context, its bots and their statistics.
struct IoThread {
  asio::io_context context{1};
  asio::executor_work_guard<asio::io_context::executor_type> work{context.get_executor()};
  bots::ThreadStats stats;
  std::vector<std::unique_ptr<bots::Bot>> bots;  // destroyed before the context
  std::atomic<bool> ran_out{false};
  std::thread thread;

  void run(int n) {
    thread = std::thread([this, n] {
      pthread_setname_np(pthread_self(), ("bots-" + std::to_string(n)).c_str());
      context.run();
      ran_out = true;
    });
  }
  // `f(stats)` on this thread, waited for.
  template <class F>
  auto on_thread(F f) {
    std::packaged_task<decltype(f(stats))()> task([this, &f] { return f(stats); });
    auto result = task.get_future();
    asio::post(context, [&task] { task(); });
    return result.get();
  }
};

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_utime.tv_sec + usage.ru_utime.tv_usec / 1e6 + usage.ru_stime.tv_sec + usage.ru_stime.tv_usec / 1e6;
}

void emit(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

std::string ms_or_null(double seconds) { return seconds < 0 ? "null" : bots::json_number(seconds * 1000.0); }

std::string counts_json(const bots::PhaseStats& p) {
  return "{\"moves_sent\":" + std::to_string(p.moves_sent) + ",\"move_updates\":" + std::to_string(p.move_updates) +
         ",\"chat_deliveries\":" + std::to_string(p.chat_deliveries) +
         ",\"trade_notifications\":" + std::to_string(p.trade_notifications) + "}";
}

class Driver {
 public:
  Driver(const bots::BotOptions& options, std::shared_ptr<const net::ClientHandshake> handshake)
      : options_(options),
        moves_(options.bots),
        trades_(options.trade_log),
        swarm_{options, std::move(handshake), moves_, trades_, run_id()} {
    for (int t = 0; t < options.threads; ++t) threads_.push_back(std::make_unique<IoThread>());
    for (int i = 0; i < options.bots; ++i) {
      IoThread& io = *threads_[i % options.threads];
      io.bots.push_back(std::make_unique<bots::Bot>(io.context, swarm_, io.stats, i));
    }
    for (int t = 0; t < options.threads; ++t) {
      IoThread& io = *threads_[t];
      for (auto& bot : io.bots) asio::post(io.context, [b = bot.get()] { b->start(); });
      io.run(t);
    }
    start_deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                                         options.ramp + 3 * options.timeout + 30));
  }

  // The main thread's loop: the start line once the logins settled, then commands until quit or EOF.
  void run() {
    std::string pending;
    bool started = false, open = true;
    while (open) {
      if (!started && (swarm_.settled.load() >= options_.bots || Clock::now() >= start_deadline_)) {
        started = true;
        emit_started_();
      }
      pollfd in{STDIN_FILENO, POLLIN, 0};
      if (poll(&in, 1, 100) <= 0) continue;
      char buffer[4096];
      const ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
      if (n <= 0) break;  // EOF (or a broken stdin): as quit
      pending.append(buffer, static_cast<std::size_t>(n));
      for (std::size_t eol; open && (eol = pending.find('\n')) != std::string::npos;) {
        std::string line = pending.substr(0, eol);
        pending.erase(0, eol + 1);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!started) {  // the parent reads "started" first: a command (Ctrl-C's quit) before it says so now
          started = true;
          emit_started_();
        }
        open = command_(line);
      }
    }
    stop_();
  }

 private:
  bool command_(const std::string& line) {
    if (line.rfind("phase ", 0) == 0) {
      phase_name_ = line.substr(6);
      const auto started = Clock::now();
      for (auto& io : threads_) {
        io->on_thread([started](bots::ThreadStats& s) {
          s.phase = {};
          s.phase_started = started;
          s.recording = true;
          return 0;
        });
      }
      phase_started_ = started;
      phase_cpu_ = cpu_seconds();
    } else if (line == "end") {
      const bots::PhaseStats p = collect_(true);
      const double seconds = std::chrono::duration<double>(Clock::now() - phase_started_).count();
      std::string series = "[";
      char sample[64];
      for (const auto& [t, ms] : p.ping_series) {
        std::snprintf(sample, sizeof sample, "%s[%.3f,%.3f]", series.size() > 1 ? "," : "", t, ms);
        series += sample;
      }
      emit("{\"event\":\"phase\",\"strategy\":" + bots::json_string(phase_name_) +
           ",\"duration_s\":" + bots::json_number(seconds) +
           ",\"swarm_cpu_s\":" + bots::json_number(cpu_seconds() - phase_cpu_) + ",\"counts\":" + counts_json(p) +
           ",\"ops\":{\"ping\":" + p.ping.to_json() + ",\"chat\":" + p.chat.to_json() +
           ",\"trade\":" + p.trade.to_json() +
           ",\"move_delivery\":" + p.move_delivery.to_json() +
           ",\"connection\":" + p.connection.to_json() + "},\"ping_series\":" + series + "]}");
    } else if (line == "progress") {
      const bots::PhaseStats p = collect_(false);
      std::string ops;
      for (const auto& [name, h] : {std::pair<const char*, const bots::LatencyHistogram*>{"ping", &p.ping},
                                    {"chat", &p.chat},
                                    {"trade", &p.trade},
                                    {"move_delivery", &p.move_delivery},
                                    {"connection", &p.connection}}) {
        ops += std::string(ops.empty() ? "" : ",") + "\"" + name + "\":{\"count\":" + std::to_string(h->count()) +
               ",\"errors\":" + std::to_string(h->errors()) + ",\"p50_ms\":" + ms_or_null(h->percentile(50)) +
               ",\"p99_ms\":" + ms_or_null(h->percentile(99)) + "}";
      }
      emit("{\"event\":\"progress\",\"connected\":" + std::to_string(swarm_.connected.load()) + ",\"seconds\":" +
           bots::json_number(std::chrono::duration<double>(Clock::now() - phase_started_).count()) +
           ",\"counts\":" + counts_json(p) + ",\"ops\":{" + ops + "}}");
    } else if (line == "quit") {
      return false;
    } else if (!line.empty()) {
      std::fprintf(stderr, "shard-bots: unknown command '%s' (phase NAME, end, progress, quit)\n", line.c_str());
    }
    return true;
  }

  // Every thread's phase so far, merged; `end` stops the recording.
  bots::PhaseStats collect_(bool end) {
    bots::PhaseStats merged;
    for (auto& io : threads_) {
      merged.merge(io->on_thread([end](bots::ThreadStats& s) {
        if (end) s.recording = false;
        return s.phase;
      }));
    }
    return merged;
  }

  void emit_started_() {
    bots::LatencyHistogram login, retry;
    for (auto& io : threads_) {
      auto [l, r] = io->on_thread([](bots::ThreadStats& s) { return std::make_pair(s.login, s.login_retry); });
      login.merge(l);
      retry.merge(r);
    }
    emit("{\"event\":\"started\",\"connected\":" + std::to_string(swarm_.connected.load()) +
         ",\"setup\":{\"login\":" + login.to_json() + ",\"login_retry\":" + retry.to_json() + "}}");
  }

  // As swarm.py's stop: every bot finishes its call in flight (a trade with
  // its further sends), kStopGrace at most, then stops on its thread (its
  // connection closed; a trade still unanswered is logged unknown, "the run
  // ended"), then the threads run out of work; one that does not within a
  // few seconds is stopped.
  void stop_() {
    each_bot_([](bots::Bot& bot) { bot.finish(); });
    const auto grace = Clock::now() + kStopGrace;
    int busy = running_();
    while (busy > 0 && Clock::now() < grace) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      busy = running_();
    }
    if (busy > 0) {
      std::fprintf(stderr, "shard-bots: %d bots still waiting for an answer %.0f s after quit: stopped\n", busy,
                   std::chrono::duration<double>(kStopGrace).count());
    }
    each_bot_([](bots::Bot& bot) { bot.stop(); });
    for (auto& io : threads_) io->work.reset();
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    for (auto& io : threads_) {
      while (!io->ran_out && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      io->context.stop();
      io->thread.join();
    }
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    emit("{\"event\":\"stopped\",\"max_rss_kib\":" + std::to_string(usage.ru_maxrss) + "}");
  }

  // `f(bot)` for every bot, on its thread, waited for (their threads still
  // run: the work guards hold until stop_ resets them).
  template <class F>
  void each_bot_(F f) {
    for (auto& io : threads_) {
      io->on_thread([&io, &f](bots::ThreadStats&) {
        for (auto& bot : io->bots) f(*bot);
        return 0;
      });
    }
  }

  // Bots not stopped yet.
  int running_() {
    int running = 0;
    each_bot_([&running](const bots::Bot& bot) { running += bot.done() ? 0 : 1; });
    return running;
  }

  static std::uint64_t run_id() {
    std::random_device entropy;
    return (static_cast<std::uint64_t>(entropy()) << 32) ^ entropy();
  }

  const bots::BotOptions& options_;
  bots::MoveTable moves_;
  bots::TradeLog trades_;
  bots::Swarm swarm_;
  std::vector<std::unique_ptr<IoThread>> threads_;
  Clock::time_point start_deadline_, phase_started_ = Clock::now();
  double phase_cpu_ = 0;
  std::string phase_name_;
};

}  // namespace

int main(int argc, char** argv) {
  // Ctrl-C reaches the whole process group: the parent ends the phase and
  // says quit, so the bots must outlive the signal.
  std::signal(SIGINT, SIG_IGN);
  std::string error;
  bool help = false;
  const auto options = bots::parse_options(std::vector<std::string>(argv + 1, argv + argc), &error, &help);
  if (!options) {
    std::fprintf(help ? stdout : stderr, help ? "%s\n" : "shard-bots: %s\n", error.c_str());
    return help ? 0 : 2;
  }
  auto handshake = std::make_shared<net::ClientHandshake>();
  handshake->codecs = {net::Codec::kZlib};  // what game_client offers
  handshake->timeout = std::chrono::milliseconds(static_cast<std::int64_t>(options->timeout * 1000));
  handshake->max_frame_bytes = 1u << 20;  // game_client's MAX_FRAME_BYTES
  if (!options->plain) {
    handshake->tls = net::make_client_tls(options->ca, true, &error);
    if (!handshake->tls) {
      std::fprintf(stderr, "shard-bots: %s\n", error.c_str());
      return 2;
    }
    handshake->tls_required = true;
    handshake->server_name = options->host;
  }
  try {
    Driver driver(*options, std::move(handshake));
    driver.run();
  } catch (const std::runtime_error& e) {  // the trade log cannot be opened
    std::fprintf(stderr, "shard-bots: %s\n", e.what());
    return 2;
  }
  return 0;
}
