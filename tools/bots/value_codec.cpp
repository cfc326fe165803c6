#include "value_codec.h"

namespace shard::bots {

void set_string(wire::Value& value, const std::string& text) { value.set_string_value(text); }

void set_int(wire::Value& value, std::int64_t number) { value.set_int_value(number); }

const wire::Value* field(const wire::Value& map, const std::string& key) {
  if (!map.has_map_value()) return nullptr;
  const auto& fields = map.map_value().fields();
  const auto it = fields.find(key);
  return it == fields.end() ? nullptr : &it->second;
}

std::optional<std::int64_t> as_int(const wire::Value* value) {
  if (value == nullptr || value->kind_case() != wire::Value::kIntValue) return std::nullopt;
  return value->int_value();
}

std::optional<double> as_number(const wire::Value* value) {
  if (value == nullptr) return std::nullopt;
  if (value->kind_case() == wire::Value::kIntValue) return static_cast<double>(value->int_value());
  if (value->kind_case() == wire::Value::kDoubleValue) return value->double_value();
  return std::nullopt;
}

std::optional<std::array<double, 3>> as_vector3(const wire::Value* value) {
  if (value == nullptr || !value->has_list_value() || value->list_value().items_size() != 3) return std::nullopt;
  std::array<double, 3> out;
  for (int i = 0; i < 3; ++i) {
    const auto number = as_number(&value->list_value().items(i));
    if (!number) return std::nullopt;
    out[i] = *number;
  }
  return out;
}

std::optional<const wire::Value*> first_item(const wire::Value& list) {
  if (!list.has_list_value()) return std::nullopt;
  if (list.list_value().items_size() == 0) return nullptr;
  return &list.list_value().items(0);
}

}  // namespace shard::bots
