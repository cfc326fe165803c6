#pragma once
// The few wire::Value shapes the bots send and read (netproto/proto/value.proto,
// docs/rpc.md): a string or an int argument; a result's map fields, an int,
// a list of numbers. Whatever the server sends is checked: a missing field or
// a value of another type reads as nullopt, never as a crash.

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "shard/wire/value.pb.h"

namespace shard::bots {

void set_string(wire::Value& value, const std::string& text);
void set_int(wire::Value& value, std::int64_t number);

// The map's field `key`, if the value is a map and has it.
const wire::Value* field(const wire::Value& map, const std::string& key);
std::optional<std::int64_t> as_int(const wire::Value* value);
// An int or a double, as a double (a position's coordinates).
std::optional<double> as_number(const wire::Value* value);
// A list of three numbers (a position).
std::optional<std::array<double, 3>> as_vector3(const wire::Value* value);
// The first item of a list; null for an empty list; nullopt if not a list.
std::optional<const wire::Value*> first_item(const wire::Value& list);

}  // namespace shard::bots
