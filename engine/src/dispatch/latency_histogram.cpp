#include "shard/engine/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace shard::engine {

int LatencyHistogram::bucket_of(int64_t ns) {
  if (ns < 1) ns = 1;
  auto value = static_cast<uint64_t>(ns);
  int octave = 63 - std::countl_zero(value);
  // The two bits below the leading one pick the sub-bucket.
  int sub = octave >= 2 ? static_cast<int>((value >> (octave - 2)) & 3) : 0;
  return std::min(octave * kSubBuckets + sub, kBuckets - 1);
}

int64_t LatencyHistogram::upper_edge(int bucket) {
  int octave = bucket / kSubBuckets;
  int sub = bucket % kSubBuckets;
  double base = std::ldexp(1.0, octave);
  return static_cast<int64_t>(base * (1.0 + (sub + 1) / 4.0));
}

void LatencyHistogram::record(int64_t ns) {
  ++buckets_[bucket_of(ns)];
  ++count_;
  max_ = std::max(max_, ns);
}

int64_t LatencyHistogram::quantile(double q) const {
  if (count_ == 0) return 0;
  auto rank = static_cast<uint64_t>(std::ceil(q * static_cast<double>(count_)));
  uint64_t seen = 0;
  for (int b = 0; b < kBuckets; ++b) {
    seen += buckets_[b];
    if (seen >= rank && buckets_[b] != 0) return std::min(upper_edge(b), max_);
  }
  return max_;
}

}  // namespace shard::engine
