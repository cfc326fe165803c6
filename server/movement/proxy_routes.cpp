#include "proxy_routes.h"

#include <mutex>

namespace shard::movement {

namespace np = netproto;

void ProxyRoutes::set(const np::Connection* client, std::uint64_t entity_id, std::shared_ptr<np::Connection> link,
                      std::uint16_t sol_node) {
  std::unique_lock lock(mutex_);
  routes_[{client, entity_id}] = Target{std::move(link), sol_node};
}

std::size_t ProxyRoutes::clear(const np::Connection* client) {
  std::unique_lock lock(mutex_);
  auto first = routes_.lower_bound({client, 0});
  auto last = first;
  std::size_t n = 0;
  while (last != routes_.end() && last->first.first == client) {
    ++last;
    ++n;
  }
  routes_.erase(first, last);
  return n;
}

std::size_t ProxyRoutes::size() const {
  std::shared_lock lock(mutex_);
  return routes_.size();
}

std::shared_ptr<np::Connection> ProxyRoutes::route(const np::Connection& from, const np::FrameHeader& header,
                                                   Routing& routing) const {
  std::shared_lock lock(mutex_);
  auto it = routes_.find({&from, header.target_id});
  if (it == routes_.end()) return nullptr;  // not this session's entity
  routing.dest_kind = np::DestKind::kEntity;
  routing.dest_node = it->second.sol_node;
  routing.target_id = header.target_id;
  return it->second.link.lock();
}

np::NativeHandlers::Handler ProxyRoutes::handler() {
  return forwarding_handler(
      [this](np::Connection& from, const np::FrameHeader& header, Routing& routing) {
        return route(from, header, routing);
      },
      stats_);
}

}  // namespace shard::movement
