// The histogram swarm.py --native merges in Python: its buckets must be the
// ones swarm_stats.Histogram computes (the expected indexes below are
// Python's int(math.log(max(s, 1e-6) / 1e-6) / math.log(1.01))).
#include <gtest/gtest.h>

#include "latency_histogram.h"

namespace shard::bots {
namespace {

TEST(LatencyHistogram, BucketsAreSwarmStatsBuckets) {
  const std::pair<double, int> known[] = {{0.0, 0},      {1e-7, 0},     {1e-6, 0},     {1.0101e-6, 1},
                                          {2.5e-6, 92},  {1e-3, 694},   {0.0123, 946}, {0.2, 1226},
                                          {1.0, 1388},   {59.9, 1799}};
  for (const auto& [seconds, index] : known) EXPECT_EQ(LatencyHistogram::bucket_of(seconds), index) << seconds;
}

TEST(LatencyHistogram, PercentilesAreTheBucketsUpperEdgeCappedAtTheMax) {
  LatencyHistogram h;
  EXPECT_LT(h.percentile(50), 0);
  for (double s : {0.001, 0.002, 0.003, 0.010}) h.add(s);
  EXPECT_NEAR(h.percentile(50), 0.0020023019482825343, 1e-15);  // swarm_stats' figure
  EXPECT_DOUBLE_EQ(h.percentile(99), 0.01);
  EXPECT_DOUBLE_EQ(h.percentile(100), 0.01);
}

TEST(LatencyHistogram, RawJsonCarriesBucketsCountsAndErrors) {
  LatencyHistogram h;
  h.add(1e-3);
  h.add(1e-3);
  h.error("CallTimeout: \"ping\"");
  EXPECT_EQ(h.to_json(),
            "{\"buckets\":{\"694\":2},\"count\":2,\"errors\":1,\"total_s\":0.002,\"max_s\":0.001,"
            "\"error_samples\":{\"CallTimeout: \\\"ping\\\"\":1}}");
}

TEST(LatencyHistogram, KeepsTenErrorKindsAndCountsEveryError) {
  LatencyHistogram a, b;
  for (int i = 0; i < 12; ++i) a.error("kind " + std::to_string(i));
  a.error("kind 0");
  b.error("kind 0");
  b.error("another");
  b.add(0.5);
  a.merge(b);
  EXPECT_EQ(a.errors(), 15u);
  EXPECT_EQ(a.count(), 1u);
  const std::string json = a.to_json();
  EXPECT_NE(json.find("\"kind 0\":3"), std::string::npos) << json;
  EXPECT_EQ(json.find("another"), std::string::npos) << json;
  EXPECT_EQ(json.find("kind 11"), std::string::npos) << json;
}

}  // namespace
}  // namespace shard::bots
