#include "latency_histogram.h"

#include <algorithm>
#include <cmath>

#include "json_text.h"

namespace shard::bots {

int LatencyHistogram::bucket_of(double seconds) {
  static const double log_ratio = std::log(kRatio);
  return static_cast<int>(std::log(std::max(seconds, kMinSeconds) / kMinSeconds) / log_ratio);
}

void LatencyHistogram::add(double seconds) {
  seconds = std::max(seconds, kMinSeconds);
  const auto index = static_cast<std::size_t>(bucket_of(seconds));
  if (index >= buckets_.size()) buckets_.resize(index + 1);
  ++buckets_[index];
  ++count_;
  total_ += seconds;
  max_ = std::max(max_, seconds);
}

void LatencyHistogram::error(const std::string& message) {
  ++errors_;
  auto it = error_samples_.find(message);
  if (it != error_samples_.end()) {
    ++it->second;
  } else if (error_samples_.size() < kErrorKinds) {
    error_samples_.emplace(message, 1);
  }
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.buckets_.size() > buckets_.size()) buckets_.resize(other.buckets_.size());
  for (std::size_t i = 0; i < other.buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  total_ += other.total_;
  max_ = std::max(max_, other.max_);
  errors_ += other.errors_;
  for (const auto& [message, n] : other.error_samples_) {
    auto it = error_samples_.find(message);
    if (it != error_samples_.end()) {
      it->second += n;
    } else if (error_samples_.size() < kErrorKinds) {
      error_samples_.emplace(message, n);
    }
  }
}

double LatencyHistogram::percentile(double p) const {
  if (count_ == 0) return -1;
  if (p >= 100) return max_;
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(count_ * p / 100.0)));
  std::uint64_t seen = 0;
  for (std::size_t index = 0; index < buckets_.size(); ++index) {
    seen += buckets_[index];
    if (seen >= rank) return std::min(kMinSeconds * std::pow(kRatio, static_cast<double>(index + 1)), max_);
  }
  return max_;
}

std::string LatencyHistogram::to_json() const {
  std::string out = "{\"buckets\":{";
  bool first = true;
  for (std::size_t index = 0; index < buckets_.size(); ++index) {
    if (buckets_[index] == 0) continue;
    out += (first ? "\"" : ",\"") + std::to_string(index) + "\":" + std::to_string(buckets_[index]);
    first = false;
  }
  out += "},\"count\":" + std::to_string(count_) + ",\"errors\":" + std::to_string(errors_) +
         ",\"total_s\":" + json_number(total_) + ",\"max_s\":" + json_number(max_) + ",\"error_samples\":{";
  first = true;
  for (const auto& [message, n] : error_samples_) {
    out += (first ? "" : ",") + json_string(message) + ":" + std::to_string(n);
    first = false;
  }
  return out + "}}";
}

}  // namespace shard::bots
