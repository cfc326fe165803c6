#include "proxy_routes.h"

#include <mutex>

namespace shard::movement {

namespace np = netproto;

void ProxyRoutes::set(const std::shared_ptr<np::Connection>& client, std::uint64_t entity_id,
                      std::shared_ptr<np::Connection> link, std::uint16_t sol_node) {
  std::unique_lock lock(mutex_);
  routes_[{client.get(), entity_id}] = Target{std::move(link), sol_node};
  clients_[entity_id] = client;
}

std::size_t ProxyRoutes::clear(const np::Connection* client) {
  std::unique_lock lock(mutex_);
  auto first = routes_.lower_bound({client, 0});
  auto last = first;
  std::size_t n = 0;
  while (last != routes_.end() && last->first.first == client) {
    clients_.erase(last->first.second);
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

std::shared_ptr<np::Connection> ProxyRoutes::reverse_route(const np::FrameHeader& header, Routing& routing) const {
  std::shared_lock lock(mutex_);
  auto it = clients_.find(header.target_id);
  if (it == clients_.end()) return nullptr;
  routing.dest_kind = np::DestKind::kClient;
  routing.dest_node = 0;
  routing.target_id = header.target_id;
  return it->second.lock();
}

np::NativeHandlers::Handler ProxyRoutes::reverse_handler() {
  // A link carries every session of the proxy: an update for an entity whose
  // session just ended is dropped, never a reason to close the link.
  return [this](np::Connection&, const np::Frame& frame) {
    Routing routing;
    std::shared_ptr<np::Connection> client = reverse_route(frame.header, routing);
    if (client != nullptr && forward(*client, frame, routing) == np::Connection::SendResult::kQueued) {
      reverse_stats_->forwarded.fetch_add(1, std::memory_order_relaxed);
    } else {
      reverse_stats_->dropped.fetch_add(1, std::memory_order_relaxed);
    }
  };
}

np::NativeHandlers::Handler ProxyRoutes::handler() {
  return forwarding_handler(
      [this](np::Connection& from, const np::FrameHeader& header, Routing& routing) {
        return route(from, header, routing);
      },
      stats_);
}

}  // namespace shard::movement
