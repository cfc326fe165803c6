#pragma once
// The proxy's table of which client connection may move which entity and
// which sol link carries it: written by the session layer (Python, at login
// and on a SessionChange, through _movement), read on every IO thread by the
// forwarding handler of movement frames (forward.h). Reads take a shared lock:
// the IO threads never wait on each other, only on a write.

#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <utility>

#include "forward.h"

namespace shard::movement {

class ProxyRoutes final {
 public:
  // `client` may move `entity_id`, whose frames go on `link` to sol `sol_node`;
  // the sol's updates for `entity_id` (its view) come back to `client`.
  void set(const std::shared_ptr<netproto::Connection>& client, std::uint64_t entity_id,
           std::shared_ptr<netproto::Connection> link, std::uint16_t sol_node);
  // Forgets every route of `client` (its session ended); how many there were.
  std::size_t clear(const netproto::Connection* client);
  std::size_t size() const;

  // The movement handler for the proxy's client listener.
  netproto::NativeHandlers::Handler handler();
  // The movement handler for the proxy's links: a sol's update for entity
  // `target_id` goes to the client that moves it.
  netproto::NativeHandlers::Handler reverse_handler();
  const ForwardStats& stats() const { return *stats_; }
  const ForwardStats& reverse_stats() const { return *reverse_stats_; }

 private:
  struct Target {
    std::weak_ptr<netproto::Connection> link;  // a closed link is not kept alive by its routes
    std::uint16_t sol_node;
  };
  std::shared_ptr<netproto::Connection> route(const netproto::Connection& from, const netproto::FrameHeader& header,
                                              Routing& routing) const;
  std::shared_ptr<netproto::Connection> reverse_route(const netproto::FrameHeader& header, Routing& routing) const;

  mutable std::shared_mutex mutex_;
  std::map<std::pair<const netproto::Connection*, std::uint64_t>, Target> routes_;  // guarded by mutex_
  std::map<std::uint64_t, std::weak_ptr<netproto::Connection>> clients_;           // entity -> client; mutex_
  std::shared_ptr<ForwardStats> stats_ = std::make_shared<ForwardStats>();
  std::shared_ptr<ForwardStats> reverse_stats_ = std::make_shared<ForwardStats>();
};

}  // namespace shard::movement
