#include "forward.h"

#include <string>

namespace shard::movement {

namespace np = netproto;

np::Connection::SendResult forward(np::Connection& to, const np::Frame& frame, const Routing& routing) {
  np::FrameHeader header = frame.header;
  header.dest_kind = routing.dest_kind;
  header.dest_node = routing.dest_node;
  header.target_id = routing.target_id;
  return to.send(header, frame.payload);
}

np::NativeHandlers::Handler forwarding_handler(Route route, std::shared_ptr<ForwardStats> stats) {
  return [route = std::move(route), stats = std::move(stats)](np::Connection& from, const np::Frame& frame) {
    if (from.closed()) return;  // the rest of a batch after a refusal
    Routing routing{frame.header.dest_kind, frame.header.dest_node, frame.header.target_id};
    std::shared_ptr<np::Connection> to = route(from, frame.header, routing);
    if (to == nullptr) {
      stats->refused.fetch_add(1, std::memory_order_relaxed);
      from.close(np::CloseReason::kProtocolError,
                 "no route for a frame of kind " + std::to_string(static_cast<int>(frame.header.kind)) +
                     " to target " + std::to_string(frame.header.target_id));
      return;
    }
    if (forward(*to, frame, routing) == np::Connection::SendResult::kQueued) {
      stats->forwarded.fetch_add(1, std::memory_order_relaxed);
    } else {
      stats->dropped.fetch_add(1, std::memory_order_relaxed);
    }
  };
}

}  // namespace shard::movement
