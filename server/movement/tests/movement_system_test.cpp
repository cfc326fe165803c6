// The movement system on real loopback connections: frames taken by the
// native handler on the IO thread, applied only at tick, validated (bounds,
// speed, distance, sequence, ownership, malformed payloads: the sender closed
// with the reason), and updates sent to the entities in range only.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "loopback.h"
#include "movement_system.h"

namespace shard::movement {
namespace {

using namespace testing;
namespace np = netproto;

class MovementSystemTest : public ::testing::Test {
 protected:
  MovementSystemTest() {
    system_.install(*native_);
    SystemConfig config;
    config.min = {-10000, -10000, -10000};
    config.max = {10000, 10000, 10000};
    config.max_speed = 100;
    config.interest_radius = 1000;
    config.cell_size = 250;
    EXPECT_TRUE(system_.add_system(1, config));
  }
  // An entity at `at`, moved through a fresh connection; returns the client's end.
  std::shared_ptr<np::Connection> entity(std::uint64_t id, const Vec3& at) {
    auto [client, server] = net_.pair();
    std::string error;
    EXPECT_TRUE(system_.add_entity(id, 1, server, at, &error)) << error;
    servers_[id] = server;
    return client;
  }
  void send(np::Connection& c, const wire::Movement& m) { send_raw(c, m.entity_id(), bytes_of(m)); }
  void send_raw(np::Connection& c, std::uint64_t target, const std::vector<std::uint8_t>& payload) {
    ASSERT_EQ(c.send(movement_header(target), payload), np::Connection::SendResult::kQueued);
  }
  void wait_in(std::uint64_t n) {
    ASSERT_TRUE(eventually([&] { return system_.stats().packets_in >= n; }));
  }
  // The sender was closed with `reason` in its close detail and the log.
  void expect_rejected(std::uint64_t id, const std::string& reason) {
    auto& server = servers_.at(id);
    ASSERT_TRUE(eventually([&] { return server->closed(); })) << reason;
    EXPECT_EQ(server->close_reason(), np::CloseReason::kProtocolError);
    EXPECT_NE(server->close_detail().find(reason), std::string::npos) << server->close_detail();
    EXPECT_TRUE(net_.logged(reason));
  }

  std::shared_ptr<np::NativeHandlers> native_ = std::make_shared<np::NativeHandlers>();
  // Before the system: its entities hold connections whose timers need the
  // loopback's io_context, so the context must be destroyed last.
  Loopback net_{native_};
  MovementSystem system_;
  std::map<std::uint64_t, std::shared_ptr<np::Connection>> servers_;
};

TEST_F(MovementSystemTest, AMoveIsQueuedOnTheIoThreadAndAppliedAtTheTick) {
  auto c = entity(7, {0, 0, 0});
  send(*c, move(7, 5, 6, 7, 1, 10));
  wait_in(1);
  ASSERT_TRUE(eventually([&] { return system_.stats().queued == 1; }));
  EXPECT_EQ(system_.entity(7)->position.x, 0);  // not before the tick
  system_.tick(0.1);
  auto state = system_.entity(7);
  EXPECT_EQ(state->position.x, 5);
  EXPECT_EQ(state->position.z, 7);
  EXPECT_EQ(state->velocity.x, 10);
  EXPECT_EQ(state->sequence, 1u);
  EXPECT_EQ(system_.stats().applied, 1u);
  EXPECT_EQ(system_.stats().queued, 0u);
  EXPECT_EQ(native_->handled(), 1u);
}

TEST_F(MovementSystemTest, UpdatesGoToEntitiesInRangeAndNotToFarOnes) {
  auto mover = entity(1, {0, 0, 0});
  auto near = entity(2, {600, 0, 0});
  auto far = entity(3, {5000, 0, 0});
  send(*mover, move(1, 3, 0, 0, 1));
  wait_in(1);
  system_.tick(0.1);
  std::optional<np::Packet> got;
  ASSERT_TRUE(eventually([&] { return (got = near->try_receive()).has_value(); }));
  EXPECT_EQ(got->header.kind, np::MessageKind::kMovement);
  EXPECT_EQ(got->header.target_id, 2u);
  wire::Movement m;
  ASSERT_TRUE(m.ParseFromArray(got->payload.data(), static_cast<int>(got->payload.size())));
  EXPECT_EQ(m.entity_id(), 1u);
  EXPECT_EQ(m.x(), 3);
  EXPECT_EQ(system_.stats().updates_out, 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(far->try_receive().has_value());
  EXPECT_FALSE(mover->try_receive().has_value());  // not to itself
}

TEST_F(MovementSystemTest, WithAnUpdateIntervalEachRecipientGetsEachMoverOnceAtItsTurn) {
  system_.set_update_interval(0.3);  // 3 ticks of 0.1 s: the recipients take turns by id % 3
  auto mover = entity(1, {0, 0, 0});
  auto a = entity(3, {600, 0, 0});   // its turn: ticks 3, 6, ...
  auto b = entity(5, {-600, 0, 0});  // its turn: ticks 2, 5, ...
  send(*mover, move(1, 3, 0, 0, 1));
  wait_in(1);
  system_.tick(0.1);
  EXPECT_EQ(system_.stats().updates_out, 0u);
  send(*mover, move(1, 4, 0, 0, 2));
  wait_in(2);
  system_.tick(0.1);
  EXPECT_EQ(system_.stats().updates_out, 1u);  // b's turn: both moves in one update
  system_.tick(0.1);
  EXPECT_EQ(system_.stats().updates_out, 2u);  // a's
  for (auto* observer : {&a, &b}) {
    std::optional<np::Packet> got;
    ASSERT_TRUE(eventually([&] { return (got = (*observer)->try_receive()).has_value(); }));
    wire::Movement m;
    ASSERT_TRUE(m.ParseFromArray(got->payload.data(), static_cast<int>(got->payload.size())));
    EXPECT_EQ(m.sequence(), 2u);
    EXPECT_EQ(m.x(), 4);
  }
  system_.tick(0.1);
  system_.tick(0.1);
  system_.tick(0.1);
  EXPECT_EQ(system_.stats().updates_out, 2u);  // nobody moved since
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(a->try_receive().has_value());
  EXPECT_FALSE(b->try_receive().has_value());
}

TEST_F(MovementSystemTest, EachRecipientsUpdatesGoOutBackToBack) {
  // Two observers on one link (a proxy's): each one's updates are contiguous
  // on it, so the proxy relays them to its client in one write.
  auto [link, link_server] = net_.pair();
  std::string error;
  ASSERT_TRUE(system_.add_entity(10, 1, link_server, {500, 0, 0}, &error)) << error;
  ASSERT_TRUE(system_.add_entity(11, 1, link_server, {-500, 0, 0}, &error)) << error;
  auto first = entity(1, {0, 100, 0});
  auto second = entity(2, {0, -100, 0});
  send(*first, move(1, 0, 101, 0, 1));
  send(*second, move(2, 0, -101, 0, 1));
  wait_in(2);
  system_.tick(0.1);
  std::vector<std::uint64_t> targets;
  ASSERT_TRUE(eventually([&] {
    while (auto p = link->try_receive()) targets.push_back(p->header.target_id);
    return targets.size() >= 4;
  }));
  EXPECT_EQ(targets, (std::vector<std::uint64_t>{10, 10, 11, 11}));
}

TEST_F(MovementSystemTest, OlderSequencesAreDroppedNotApplied) {
  auto c = entity(1, {0, 0, 0});
  send(*c, move(1, 5, 0, 0, 10));
  send(*c, move(1, 6, 0, 0, 9));
  send(*c, move(1, 7, 0, 0, 10));
  wait_in(3);
  system_.tick(0.1);
  EXPECT_EQ(system_.entity(1)->position.x, 5);
  EXPECT_EQ(system_.stats().stale, 2u);
  EXPECT_FALSE(servers_.at(1)->closed());
}

TEST_F(MovementSystemTest, APositionOutsideTheSystemClosesTheSender) {
  auto c = entity(1, {9990, 0, 0});
  send(*c, move(1, 10001, 0, 0, 1));
  wait_in(1);
  system_.tick(1);
  expect_rejected(1, "outside solar system 1");
  EXPECT_EQ(system_.entity(1)->position.x, 9990);
  EXPECT_EQ(system_.stats().rejected, 1u);
}

TEST_F(MovementSystemTest, AVelocityOverTheSpeedLimitClosesTheSender) {
  auto c = entity(1, {0, 0, 0});
  send(*c, move(1, 0, 0, 0, 1, 150));
  wait_in(1);
  system_.tick(0.1);
  expect_rejected(1, "over the limit");
}

TEST_F(MovementSystemTest, MovingFartherThanTheSpeedAllowsClosesTheSender) {
  auto c = entity(1, {0, 0, 0});
  system_.tick(0.1);  // 0.1 s at 100 m/s: 10 m (+ slack)
  send(*c, move(1, 9, 0, 0, 1));
  wait_in(1);
  system_.tick(0.1);  // 9 m of 20 m banked: fine
  EXPECT_EQ(system_.entity(1)->position.x, 9);
  send(*c, move(1, 60, 0, 0, 2));
  wait_in(2);
  system_.tick(0.1);
  expect_rejected(1, "m allowed");
  EXPECT_EQ(system_.entity(1)->position.x, 9);
}

TEST_F(MovementSystemTest, AMalformedPayloadClosesTheSenderOnTheIoThread) {
  auto c = entity(1, {0, 0, 0});
  send_raw(*c, 1, {0xff, 0xff, 0xff});
  expect_rejected(1, "is not a Movement");
  EXPECT_EQ(system_.stats().queued, 0u);
}

TEST_F(MovementSystemTest, AHeaderThatNamesAnotherEntityThanThePayloadClosesTheSender) {
  auto c = entity(1, {0, 0, 0});
  send_raw(*c, 2, bytes_of(move(1, 1, 0, 0, 1)));
  expect_rejected(1, "in a frame for target 2");
}

TEST_F(MovementSystemTest, NonFiniteCoordinatesCloseTheSender) {
  auto c = entity(1, {0, 0, 0});
  send(*c, move(1, std::nan(""), 0, 0, 1));
  expect_rejected(1, "non-finite");
}

TEST_F(MovementSystemTest, MovingAnotherConnectionsEntityClosesTheSender) {
  auto mine = entity(1, {0, 0, 0});
  auto theirs = entity(2, {10, 0, 0});
  send(*mine, move(2, 11, 0, 0, 1));
  wait_in(1);
  system_.tick(0.1);
  expect_rejected(1, "not moved through this connection");
  EXPECT_EQ(system_.entity(2)->position.x, 10);
  EXPECT_FALSE(servers_.at(2)->closed());
}

// A proxy's link carries every session of that proxy: one client's bad move
// must cost only that move (and its entity is reported), never the link.
TEST_F(MovementSystemTest, OnASharedLinkABadMoveIsDroppedAndReportedAndTheLinkStaysOpen) {
  auto [proxy, link] = net_.pair();
  std::string error;
  ASSERT_TRUE(system_.add_entity(1, 1, link, {0, 0, 0}, &error)) << error;
  ASSERT_TRUE(system_.add_entity(2, 1, link, {10, 0, 0}, &error)) << error;
  system_.add_shared_link(link);
  send(*proxy, move(1, 0, 0, 0, 1, 150));         // over the speed limit
  send_raw(*proxy, 2, {0xff, 0xff, 0xff});        // not a Movement (refused on the IO thread)
  send(*proxy, move(2, 12, 0, 0, 2));             // the other session's good move
  wait_in(3);
  system_.tick(0.1);
  EXPECT_FALSE(link->closed()) << link->close_detail();
  EXPECT_EQ(system_.entity(1)->position.x, 0);
  EXPECT_EQ(system_.entity(2)->position.x, 12);
  EXPECT_EQ(system_.stats().rejected, 2u);
  EXPECT_EQ(system_.stats().applied, 1u);
  std::vector<MovementSystem::Offender> offenders = system_.take_offenders();
  ASSERT_EQ(offenders.size(), 2u);
  std::map<std::uint64_t, std::string> by_entity;
  for (auto& o : offenders) by_entity[o.entity_id] = o.reason;
  EXPECT_NE(by_entity[1].find("over the limit"), std::string::npos) << by_entity[1];
  EXPECT_NE(by_entity[2].find("is not a Movement"), std::string::npos) << by_entity[2];
  EXPECT_TRUE(system_.take_offenders().empty());  // taken once
}

TEST_F(MovementSystemTest, OnASharedLinkAnotherConnectionsEntityIsDroppedWithoutBlamingItsOwner) {
  auto [proxy, link] = net_.pair();
  auto theirs = entity(2, {10, 0, 0});
  std::string error;
  ASSERT_TRUE(system_.add_entity(1, 1, link, {0, 0, 0}, &error)) << error;
  system_.add_shared_link(link);
  send(*proxy, move(2, 11, 0, 0, 1));
  wait_in(1);
  system_.tick(0.1);
  EXPECT_FALSE(link->closed());
  EXPECT_EQ(system_.entity(2)->position.x, 10);
  EXPECT_EQ(system_.stats().rejected, 1u);
  EXPECT_TRUE(system_.take_offenders().empty());
}

TEST_F(MovementSystemTest, MovesOfARemovedEntityAreDroppedWithoutClosingTheSender) {
  auto c = entity(1, {0, 0, 0});
  send(*c, move(1, 1, 0, 0, 1));
  wait_in(1);
  ASSERT_TRUE(system_.remove_entity(1));  // removed while its move was in flight
  system_.tick(0.1);
  EXPECT_EQ(system_.stats().unknown, 1u);
  EXPECT_EQ(system_.stats().rejected, 0u);
  EXPECT_FALSE(servers_.at(1)->closed());
}

TEST_F(MovementSystemTest, RegistrationChecksTheSystemTheIdAndTheBounds) {
  std::string error;
  EXPECT_FALSE(system_.add_entity(1, 9, nullptr, {0, 0, 0}, &error));
  EXPECT_EQ(error, "no solar system 9");
  EXPECT_FALSE(system_.add_entity(0, 1, nullptr, {0, 0, 0}, &error));
  EXPECT_FALSE(system_.add_entity(1, 1, nullptr, {0, 0, 20000}, &error));
  EXPECT_TRUE(system_.add_entity(1, 1, nullptr, {0, 0, 0}, &error));
  EXPECT_FALSE(system_.add_entity(1, 1, nullptr, {0, 0, 0}, &error));
  EXPECT_TRUE(system_.remove_entity(1));
  EXPECT_FALSE(system_.remove_entity(1));
  EXPECT_FALSE(system_.add_system(1, SystemConfig{}));
}

}  // namespace
}  // namespace shard::movement
