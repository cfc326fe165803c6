#pragma once
// Latencies in nanoseconds, in log-spaced buckets (4 per power of two, ~19%
// wide): cheap to record, good enough for p50/p99, exact max.

#include <array>
#include <cstdint>

namespace shard::engine {

class LatencyHistogram final {
 public:
  void record(int64_t ns);
  void reset() { *this = LatencyHistogram{}; }
  uint64_t count() const { return count_; }
  int64_t max() const { return max_; }
  // The upper edge of the bucket holding that quantile (0..1).
  int64_t quantile(double q) const;

 private:
  static constexpr int kSubBuckets = 4;
  static constexpr int kBuckets = 64 * kSubBuckets;
  static int bucket_of(int64_t ns);
  static int64_t upper_edge(int bucket);

  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  int64_t max_ = 0;
};

}  // namespace shard::engine
