#pragma once
// What the bots of one IO thread measured, touched only on that thread (no
// lock on the hot path); main.cpp takes a copy through a post when the parent
// asks and merges the threads' copies.

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "latency_histogram.h"

namespace shard::bots {

inline constexpr std::size_t kSeriesCap = 200'000;  // swarm.py's SERIES_CAP: ping samples per phase

struct PhaseStats {
  LatencyHistogram ping, chat, trade, move_delivery, connection;
  std::uint64_t moves_sent = 0, move_updates = 0, chat_deliveries = 0, trade_notifications = 0;
  std::vector<std::pair<double, double>> ping_series;  // (s since the phase start, ms)

  void merge(const PhaseStats& other);
};

struct ThreadStats {
  using Clock = std::chrono::steady_clock;

  // The setup's, recorded whether or not a phase runs.
  LatencyHistogram login, login_retry;
  // Nothing is recorded outside a phase.
  bool recording = false;
  Clock::time_point phase_started;
  PhaseStats phase;

  void record_ping(double seconds, Clock::time_point now) {
    if (!recording) return;
    phase.ping.add(seconds);
    if (phase.ping_series.size() < kSeriesCap) {
      phase.ping_series.emplace_back(std::chrono::duration<double>(now - phase_started).count(), seconds * 1000.0);
    }
  }
  void error(LatencyHistogram PhaseStats::*op, const std::string& message) {
    if (recording) (phase.*op).error(message);
  }
};

}  // namespace shard::bots
