// The values the bots send and read, through the wire's bytes: what goes
// out reads back the same, and what the server might send wrong reads as
// "absent", never as a crash.
#include <gtest/gtest.h>

#include "value_codec.h"

namespace shard::bots {
namespace {

wire::Value round_trip(const wire::Value& value) {
  wire::Value back;
  EXPECT_TRUE(back.ParseFromString(value.SerializeAsString()));
  return back;
}

TEST(ValueCodec, StringAndIntArgumentsRoundTrip) {
  wire::Value name, id;
  set_string(name, "bot17");
  set_int(id, -(std::int64_t{1} << 40));
  EXPECT_EQ(round_trip(name).string_value(), "bot17");
  const wire::Value back = round_trip(id);
  EXPECT_EQ(as_int(&back), -(std::int64_t{1} << 40));
}

TEST(ValueCodec, ASelectResultGivesTheShipAndItsPosition) {
  wire::Value attributes;
  auto& fields = *attributes.mutable_map_value()->mutable_fields();
  set_int(fields["ship_id"], 4242);
  auto* position = fields["ship_position"].mutable_list_value();
  position->add_items()->set_double_value(1.5);
  set_int(*position->add_items(), -2);
  position->add_items()->set_double_value(3e9);
  const wire::Value back = round_trip(attributes);
  EXPECT_EQ(as_int(field(back, "ship_id")), 4242);
  EXPECT_EQ(as_vector3(field(back, "ship_position")), (std::array<double, 3>{1.5, -2.0, 3e9}));
  EXPECT_EQ(field(back, "missing"), nullptr);
}

TEST(ValueCodec, WrongShapesReadAsAbsent) {
  wire::Value text, two, list;
  set_string(text, "12");
  EXPECT_FALSE(as_int(&text));
  EXPECT_FALSE(as_int(nullptr));
  EXPECT_EQ(field(text, "ship_id"), nullptr);  // not a map
  two.mutable_list_value()->add_items()->set_double_value(1);
  two.mutable_list_value()->add_items()->set_double_value(2);
  EXPECT_FALSE(as_vector3(&two));
  set_string(*list.mutable_list_value()->add_items(), "x");
  list.mutable_list_value()->add_items()->set_double_value(1);
  list.mutable_list_value()->add_items()->set_double_value(2);
  EXPECT_FALSE(as_vector3(&list));  // a string among the numbers
}

TEST(ValueCodec, FirstItemOfAListEmptyOrNot) {
  wire::Value empty, characters, other;
  empty.mutable_list_value();
  EXPECT_EQ(first_item(empty), std::optional<const wire::Value*>(nullptr));
  auto& character = *characters.mutable_list_value()->add_items();
  set_int((*character.mutable_map_value()->mutable_fields())["character_id"], 9);
  const wire::Value back = round_trip(characters);
  const auto first = first_item(back);
  ASSERT_TRUE(first && *first);
  EXPECT_EQ(as_int(field(**first, "character_id")), 9);
  set_int(other, 1);
  EXPECT_FALSE(first_item(other));
}

}  // namespace
}  // namespace shard::bots
