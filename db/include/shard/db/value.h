#pragma once
// A SQL value as it travels between a tasklet and a database thread: plain
// C++ (no Python objects), so it crosses threads without the interpreter lock.

#include <cstdint>
#include <string>
#include <vector>

namespace shard::db {

struct Value {
  enum class Kind : uint8_t { kNull, kInt, kUInt, kDouble, kText, kBytes, kDecimal, kDateTime, kDate, kTime };
  Kind kind = Kind::kNull;
  int64_t i = 0;     // kInt
  uint64_t u = 0;    // kUInt
  double d = 0;      // kDouble
  std::string s;     // kText (UTF-8), kBytes, and the textual kinds: "1.50", "2024-01-02 03:04:05"
};

using Row = std::vector<Value>;

}  // namespace shard::db
