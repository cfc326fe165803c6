#pragma once
// swarm_stats.Histogram's raw form in C++ (tools/client/swarm_stats.py): 1 %
// wide log buckets from 1 us, exact count, errors, total and max, and at most
// ten kinds of error message kept. One per operation per IO thread, merged
// when the parent asks; to_json() writes what Histogram.from_raw() reads.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace shard::bots {

class LatencyHistogram {
 public:
  static constexpr double kMinSeconds = 1e-6;  // anything faster counts as 1 us
  static constexpr double kRatio = 1.01;
  static constexpr std::size_t kErrorKinds = 10;

  // int(log(max(s, 1e-6) / 1e-6) / log(1.01)), as swarm_stats computes it.
  static int bucket_of(double seconds);

  void add(double seconds);
  void error(const std::string& message);
  void merge(const LatencyHistogram& other);

  std::uint64_t count() const { return count_; }
  std::uint64_t errors() const { return errors_; }
  // Seconds under which p % of the samples lie (as Histogram.percentile); -1: no samples.
  double percentile(double p) const;
  // {"buckets":{"INDEX":COUNT,...},"count":..,"errors":..,"total_s":..,"max_s":..,"error_samples":{..}}
  std::string to_json() const;

 private:
  std::vector<std::uint64_t> buckets_;  // by index (a flat array: add() is on every update's path)
  std::uint64_t count_ = 0, errors_ = 0;
  double total_ = 0, max_ = 0;
  std::map<std::string, std::uint64_t> error_samples_;
};

}  // namespace shard::bots
