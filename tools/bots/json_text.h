#pragma once
// The little JSON shard-bots writes on stdout: strings escaped, numbers in
// the shortest form that reads back the same.

#include <string>

namespace shard::bots {

// `text` as a JSON string literal, quotes included (control characters
// escaped, bytes that are not UTF-8 passed as they are: the reader replaces them).
std::string json_string(const std::string& text);
// A double as JSON (%.17g trimmed; NaN and infinities as null).
std::string json_number(double value);

}  // namespace shard::bots
