// move_delivery's table: an update is timed only when its sequence is the
// last one its ship's bot sent; unknown ships, older sequences are not.
#include <gtest/gtest.h>

#include <thread>

#include "move_table.h"

namespace shard::bots {
namespace {

using Clock = MoveTable::Clock;

TEST(MoveTable, AnUpdateOfTheLastSequenceSentIsTimedFromItsSend) {
  MoveTable table(3);
  const auto sent = Clock::now();
  table.add_ship(9001, 2);
  EXPECT_FALSE(table.delivered(9001, 1, sent));  // nothing sent yet
  table.sent(2, 7, sent);
  const auto seconds = table.delivered(9001, 7, sent + std::chrono::milliseconds(25));
  ASSERT_TRUE(seconds);
  EXPECT_NEAR(*seconds, 0.025, 1e-6);
  EXPECT_FALSE(table.delivered(9001, 6, sent));  // an older move's update
  EXPECT_FALSE(table.delivered(4242, 7, sent));  // a ship no bot drives
}

TEST(MoveTable, EveryBotsShipIsFoundWhenTheTableIsFull) {
  const std::size_t bots = 5000;
  MoveTable table(bots);
  const auto now = Clock::now();
  for (std::size_t i = 0; i < bots; ++i) {
    table.add_ship(1'000'000 + 4096 * i, i);  // ids that collide in a naive modulo
    table.sent(i, static_cast<std::uint32_t>(i + 1), now);
  }
  for (std::size_t i = 0; i < bots; ++i) {
    EXPECT_TRUE(table.delivered(1'000'000 + 4096 * i, static_cast<std::uint32_t>(i + 1), now)) << i;
  }
  EXPECT_FALSE(table.delivered(999, 1, now));
}

TEST(MoveTable, ReadersOnOtherThreadsSeeShipsAddedMeanwhile) {
  MoveTable table(1000);
  const auto now = Clock::now();
  std::thread writer([&] {
    for (std::size_t i = 0; i < 1000; ++i) {
      table.sent(i, 1, now);
      table.add_ship(i + 1, i);
    }
  });
  std::size_t found = 0;
  while (found < 1000) {
    found = 0;
    for (std::size_t i = 0; i < 1000; ++i) found += table.delivered(i + 1, 1, now).has_value();
  }
  writer.join();
  EXPECT_EQ(found, 1000u);
}

}  // namespace
}  // namespace shard::bots
