#pragma once
// The proxy's hop for native frames (movement): a frame from a client's
// connection goes to the link of the sol that owns its entity, by the header
// alone, on the IO thread: no Python, no protobuf parse. The session layer
// supplies `Route` (which link, and the routing fields to write); this file
// does the rest. Routing fields are rewritten on the copy that is sent; kind,
// native flag, priority and payload travel unchanged (the outgoing connection
// compresses by its own codec).

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "shard/netproto/connection.h"
#include "shard/netproto/native_handlers.h"

namespace shard::movement {

struct Routing {
  netproto::DestKind dest_kind = netproto::DestKind::kEntity;
  std::uint16_t dest_node = 0;
  std::uint64_t target_id = 0;
};

// Sends `frame` on `to` with `routing` written into its header.
netproto::Connection::SendResult forward(netproto::Connection& to, const netproto::Frame& frame,
                                         const Routing& routing);

struct ForwardStats {
  std::atomic<std::uint64_t> forwarded{0};
  std::atomic<std::uint64_t> refused{0};  // no route: the sender was closed
  std::atomic<std::uint64_t> dropped{0};  // the link refused the frame (closed, backpressure)
};

// On an IO thread, for each frame: the connection to forward it on and the
// routing to write, given the frame's header and the connection it came on;
// null: this sender may not send it (e.g. the entity is not its session's).
// Must not block; it is called concurrently from every IO thread.
using Route = std::function<std::shared_ptr<netproto::Connection>(netproto::Connection& from,
                                                                  const netproto::FrameHeader& header,
                                                                  Routing& routing)>;

// A native handler that forwards every frame of its kind by `route`; a frame
// without a route closes its sender as a protocol error with the reason.
netproto::NativeHandlers::Handler forwarding_handler(Route route, std::shared_ptr<ForwardStats> stats);

}  // namespace shard::movement
