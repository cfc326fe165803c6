// The proxy's forwarding primitive on real connections: a client's movement
// frame reaches the sol's link with the routing fields the route wrote and the
// payload untouched, on the IO thread; a frame without a route closes its sender.
#include <gtest/gtest.h>

#include "forward.h"
#include "loopback.h"

namespace shard::movement {
namespace {

using namespace testing;
namespace np = netproto;

TEST(Forward, AFrameGoesToTheRoutedLinkWithItsRoutingRewritten) {
  Loopback sol(nullptr);
  auto [link, sol_end] = sol.pair();  // the proxy's link to sol node 7
  auto stats = std::make_shared<ForwardStats>();
  auto native = std::make_shared<np::NativeHandlers>();
  native->set(np::MessageKind::kMovement,
              forwarding_handler(
                  [link = link](np::Connection&, const np::FrameHeader& header, Routing& routing) {
                    if (header.target_id != 42) return std::shared_ptr<np::Connection>();
                    routing.dest_node = 7;
                    return link;
                  },
                  stats));
  Loopback proxy(native);
  auto [client, proxy_end] = proxy.pair();
  const auto payload = bytes_of(move(42, 1, 2, 3, 5));
  ASSERT_EQ(client->send(movement_header(42), payload), np::Connection::SendResult::kQueued);
  std::optional<np::Packet> got;
  ASSERT_TRUE(eventually([&] { return (got = sol_end->try_receive()).has_value(); }));
  EXPECT_EQ(got->header.kind, np::MessageKind::kMovement);
  EXPECT_TRUE(got->header.native);
  EXPECT_EQ(got->header.priority, np::Priority::kHigh);
  EXPECT_EQ(got->header.dest_kind, np::DestKind::kEntity);
  EXPECT_EQ(got->header.dest_node, 7);
  EXPECT_EQ(got->header.target_id, 42u);
  EXPECT_EQ(std::vector<std::uint8_t>(got->payload.begin(), got->payload.end()), payload);
  EXPECT_EQ(stats->forwarded.load(), 1u);
  EXPECT_EQ(proxy_end->stats().packets_in, 0u);  // never queued for Python
  EXPECT_EQ(native->handled(), 1u);
}

TEST(Forward, AFrameWithoutARouteClosesItsSender) {
  auto stats = std::make_shared<ForwardStats>();
  auto native = std::make_shared<np::NativeHandlers>();
  native->set(np::MessageKind::kMovement,
              forwarding_handler([](np::Connection&, const np::FrameHeader&, Routing&) { return nullptr; }, stats));
  Loopback proxy(native);
  auto [client, proxy_end] = proxy.pair();
  ASSERT_EQ(client->send(movement_header(9), bytes_of(move(9, 0, 0, 0, 1))), np::Connection::SendResult::kQueued);
  ASSERT_TRUE(eventually([&] { return proxy_end->closed(); }));
  EXPECT_EQ(proxy_end->close_reason(), np::CloseReason::kProtocolError);
  EXPECT_NE(proxy_end->close_detail().find("no route for a frame of kind 10 to target 9"), std::string::npos);
  EXPECT_EQ(stats->refused.load(), 1u);
}

TEST(Forward, RewritesOnlyTheRoutingFields) {
  Loopback sol(nullptr);
  auto [link, sol_end] = sol.pair();
  np::Frame frame;
  frame.header = movement_header(3);
  const std::vector<std::uint8_t> payload{1, 2, 3};
  frame.payload = payload;
  ASSERT_EQ(forward(*link, frame, {np::DestKind::kClient, 9, 1234}), np::Connection::SendResult::kQueued);
  std::optional<np::Packet> got;
  ASSERT_TRUE(eventually([&] { return (got = sol_end->try_receive()).has_value(); }));
  np::FrameHeader expected = frame.header;
  expected.dest_kind = np::DestKind::kClient;
  expected.dest_node = 9;
  expected.target_id = 1234;
  got->header.codec = expected.codec;
  EXPECT_EQ(got->header, expected);
  EXPECT_EQ(std::vector<std::uint8_t>(got->payload.begin(), got->payload.end()), payload);
}

}  // namespace
}  // namespace shard::movement
