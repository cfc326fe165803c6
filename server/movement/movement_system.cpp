#include "movement_system.h"

#include <cmath>
#include <algorithm>
#include <span>

namespace shard::movement {
namespace {

namespace np = netproto;

// Banked travel time is capped: an entity idle for an hour may not jump an
// hour's distance at once.
constexpr double kMaxAllowanceS = 1.0;
// Rounding of the client's clock and floats: a little slack on each check.
constexpr double kSpeedSlack = 1.01;
constexpr double kDistanceSlackM = 1.0;

bool finite(const wire::Movement& m) {
  return std::isfinite(m.x()) && std::isfinite(m.y()) && std::isfinite(m.z()) && std::isfinite(m.vx()) &&
         std::isfinite(m.vy()) && std::isfinite(m.vz()) && std::isfinite(m.heading());
}

bool inside(const SystemConfig& c, const Vec3& p) {
  return p.x >= c.min.x && p.x <= c.max.x && p.y >= c.min.y && p.y <= c.max.y && p.z >= c.min.z && p.z <= c.max.z;
}

}  // namespace

bool MovementSystem::add_system(std::uint32_t system_id, const SystemConfig& c) {
  const bool valid = c.min.x <= c.max.x && c.min.y <= c.max.y && c.min.z <= c.max.z && c.max_speed > 0 &&
                     c.interest_radius >= 0 && c.cell_size > 0 && std::isfinite(c.cell_size);
  if (!valid || systems_.contains(system_id)) return false;
  systems_.emplace(system_id, System{c, SpatialGrid(c.cell_size)});
  return true;
}

bool MovementSystem::add_entity(std::uint64_t entity_id, std::uint32_t system_id,
                                std::shared_ptr<np::Connection> connection, const Vec3& position,
                                std::string* error) {
  auto system = systems_.find(system_id);
  if (system == systems_.end()) {
    *error = "no solar system " + std::to_string(system_id);
  } else if (entity_id == 0 || entity_id > np::kMaxTargetId) {
    *error = "entity id " + std::to_string(entity_id) + " out of range 1..2**48-1";
  } else if (entities_.contains(entity_id)) {
    *error = "entity " + std::to_string(entity_id) + " is already registered";
  } else if (!inside(system->second.config, position)) {
    *error = "entity position outside solar system " + std::to_string(system_id);
  } else {
    Entity e;
    e.state.system_id = system_id;
    e.state.position = position;
    e.connection = std::move(connection);
    e.allowance_at = clock_s_;
    entities_.emplace(entity_id, std::move(e));
    system->second.grid.place(entity_id, position);
    return true;
  }
  return false;
}

bool MovementSystem::remove_entity(std::uint64_t entity_id) {
  auto it = entities_.find(entity_id);
  if (it == entities_.end()) return false;
  systems_.at(it->second.state.system_id).grid.remove(entity_id);
  entities_.erase(it);
  pending_.erase(entity_id);
  return true;
}

void MovementSystem::install(np::NativeHandlers& handlers) {
  handlers.set(np::MessageKind::kMovement,
               [this](np::Connection& connection, const np::Frame& frame) { on_frame(connection, frame); });
}

void MovementSystem::reject(np::Connection& from, const std::string& reason) {
  rejected_.fetch_add(1, std::memory_order_relaxed);
  // The connection logs the close with its peer's address and this reason.
  from.close(np::CloseReason::kProtocolError, "movement: " + reason);
}

void MovementSystem::add_shared_link(const std::shared_ptr<np::Connection>& connection) {
  std::lock_guard lock(inbox_mutex_);
  std::erase_if(shared_links_, [](const auto& entry) { return entry.second.expired(); });
  shared_links_[connection.get()] = connection;
}

std::vector<MovementSystem::Offender> MovementSystem::take_offenders() {
  std::vector<Offender> taken;
  std::lock_guard lock(inbox_mutex_);
  taken.swap(offenders_);
  return taken;
}

void MovementSystem::refuse(np::Connection& from, std::uint64_t entity_id, const std::string& reason) {
  {
    std::lock_guard lock(inbox_mutex_);
    auto link = shared_links_.find(&from);
    if (link != shared_links_.end() && link->second.lock().get() == &from) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      if (entity_id != 0 && offenders_.size() < kMaxOffenders) offenders_.push_back({entity_id, reason});
      return;
    }
  }
  reject(from, reason);
}

// IO thread: the frame is still in the decoder's buffer. Only what the frame
// alone can tell is checked here; the entity's state is the loop's.
void MovementSystem::on_frame(np::Connection& connection, const np::Frame& frame) {
  packets_in_.fetch_add(1, std::memory_order_relaxed);
  if (connection.closed()) return;  // the rest of a batch after a rejection
  Incoming in;
  const std::uint64_t target = frame.header.target_id;
  if (!in.move.ParseFromArray(frame.payload.data(), static_cast<int>(frame.payload.size()))) {
    return refuse(connection, target,
                  "payload of " + std::to_string(frame.payload.size()) + " bytes is not a Movement");
  }
  if (in.move.entity_id() != target) {
    return refuse(connection, target,
                  "entity " + std::to_string(in.move.entity_id()) + " in a frame for target " + std::to_string(target));
  }
  if (!finite(in.move)) return refuse(connection, target, "non-finite coordinate for entity " + std::to_string(target));
  in.from = connection.shared_from_this();
  std::lock_guard lock(inbox_mutex_);
  inbox_.push_back(std::move(in));
}

std::string MovementSystem::validate(const Entity& entity, const System& system, const wire::Movement& m) const {
  const SystemConfig& c = system.config;
  const Vec3 to{m.x(), m.y(), m.z()};
  if (!inside(c, to)) return "position outside solar system " + std::to_string(entity.state.system_id);
  const double v2 = double(m.vx()) * m.vx() + double(m.vy()) * m.vy() + double(m.vz()) * m.vz();
  const double limit = c.max_speed * kSpeedSlack;
  if (v2 > limit * limit) {
    return "speed " + std::to_string(std::sqrt(v2)) + " m/s over the limit " + std::to_string(c.max_speed);
  }
  const double banked = std::min(kMaxAllowanceS, entity.allowance_s + (clock_s_ - entity.allowance_at));
  const double reach = limit * banked + kDistanceSlackM;
  const double moved = std::sqrt(distance_squared(entity.state.position, to));
  if (moved > reach) {
    return "moved " + std::to_string(moved) + " m, at most " + std::to_string(reach) + " m allowed";
  }
  return {};
}

void MovementSystem::tick(double dt) {
  ++ticks_;
  clock_s_ += dt;
  {
    std::lock_guard lock(inbox_mutex_);
    draining_.swap(inbox_);
  }
  for (Incoming& in : draining_) {
    if (in.from->closed()) continue;  // rejected earlier this tick
    const std::uint64_t id = in.move.entity_id();
    auto it = entities_.find(id);
    if (it == entities_.end()) {
      // Most likely removed while its moves were in flight (a jump, a logout):
      // dropped, not an offence.
      ++unknown_;
      continue;
    }
    Entity& e = it->second;
    if (e.connection != in.from) {
      // On a shared link the entity is not the sender's (a route the proxy
      // had not updated yet): dropped, and its owner is not blamed.
      refuse(*in.from, 0, "entity " + std::to_string(id) + " is not moved through this connection");
      continue;
    }
    if (e.state.has_sequence && in.move.sequence() <= e.state.sequence) {
      ++stale_;
      continue;
    }
    System& system = systems_.at(e.state.system_id);
    if (std::string why = validate(e, system, in.move); !why.empty()) {
      refuse(*in.from, id, "entity " + std::to_string(id) + ": " + why);
      continue;
    }
    const Vec3 to{in.move.x(), in.move.y(), in.move.z()};
    const double banked = std::min(kMaxAllowanceS, e.allowance_s + (clock_s_ - e.allowance_at));
    e.allowance_s = std::max(0.0, banked - std::sqrt(distance_squared(e.state.position, to)) / system.config.max_speed);
    e.allowance_at = clock_s_;
    e.state.position = to;
    e.state.velocity = {in.move.vx(), in.move.vy(), in.move.vz()};
    e.state.heading = in.move.heading();
    e.state.sequence = in.move.sequence();
    e.state.has_sequence = true;
    system.grid.place(id, to);
    ++applied_;
    // Who hears of it: everyone in range now, at their next update.
    near_.clear();
    system.grid.in_range(id, system.config.interest_radius, near_);
    for (std::uint64_t to_id : near_) pending_[to_id].push_back(id);
  }
  draining_.clear();
  send_updates(dt);
}

void MovementSystem::send_updates(double dt) {
  // Each recipient is updated every `groups` ticks, a different share of them
  // at each tick (by id), so a sol's updates do not leave in one burst per
  // interval that would hold up its proxies' IO threads (and every packet
  // behind them) for that long.
  const std::uint64_t groups =
      update_interval_s_ > 0 && dt > 0 ? std::max<long long>(1, std::llround(update_interval_s_ / dt)) : 1;
  const std::uint64_t group = ticks_ % groups;
  payloads_.clear();
  serialized_.clear();
  for (auto& [recipient, movers] : pending_) {
    if (movers.empty() || recipient % groups != group) continue;
    std::sort(movers.begin(), movers.end());
    movers.erase(std::unique(movers.begin(), movers.end()), movers.end());
    const auto to = entities_.find(recipient);
    np::Connection* connection = to != entities_.end() ? to->second.connection.get() : nullptr;
    if (connection != nullptr && !connection->closed()) {
      np::FrameHeader header;
      header.kind = np::MessageKind::kMovement;
      header.native = true;
      header.priority = np::Priority::kHigh;
      header.dest_kind = np::DestKind::kClient;
      header.target_id = recipient;  // whose view this update is for
      for (std::uint64_t mover : movers) {
        const std::span<const std::uint8_t> payload = serialized(mover);
        if (payload.empty()) continue;  // removed since it moved
        if (connection->send(header, payload) == np::Connection::SendResult::kQueued) ++updates_out_;
      }
    }
    movers.clear();  // keeps its capacity for the next interval
  }
}

std::span<const std::uint8_t> MovementSystem::serialized(std::uint64_t mover) {
  auto [cached, fresh] = serialized_.try_emplace(mover);
  if (!fresh) return {payloads_.data() + cached->second.first, cached->second.second};
  const auto it = entities_.find(mover);
  if (it == entities_.end()) return {};
  const EntityState& s = it->second.state;
  wire::Movement out;
  out.set_entity_id(mover);
  out.set_x(s.position.x);
  out.set_y(s.position.y);
  out.set_z(s.position.z);
  out.set_vx(static_cast<float>(s.velocity.x));
  out.set_vy(static_cast<float>(s.velocity.y));
  out.set_vz(static_cast<float>(s.velocity.z));
  out.set_heading(s.heading);
  out.set_sequence(s.sequence);
  const auto offset = static_cast<std::uint32_t>(payloads_.size());
  const auto size = static_cast<std::uint32_t>(out.ByteSizeLong());
  payloads_.resize(offset + size);
  out.SerializeWithCachedSizesToArray(payloads_.data() + offset);
  cached->second = {offset, size};
  return {payloads_.data() + offset, size};
}

std::optional<EntityState> MovementSystem::entity(std::uint64_t entity_id) const {
  auto it = entities_.find(entity_id);
  if (it == entities_.end()) return std::nullopt;
  return it->second.state;
}

std::vector<std::uint64_t> MovementSystem::in_range(std::uint64_t entity_id, double radius) const {
  std::vector<std::uint64_t> out;
  auto it = entities_.find(entity_id);
  if (it != entities_.end()) systems_.at(it->second.state.system_id).grid.in_range(entity_id, radius, out);
  std::sort(out.begin(), out.end());
  return out;
}

MovementSystem::Stats MovementSystem::stats() const {
  Stats s;
  s.packets_in = packets_in_.load(std::memory_order_relaxed);
  s.rejected = rejected_.load(std::memory_order_relaxed);
  s.applied = applied_;
  s.stale = stale_;
  s.unknown = unknown_;
  s.updates_out = updates_out_;
  s.ticks = ticks_;
  {
    std::lock_guard lock(inbox_mutex_);
    s.queued = inbox_.size();
  }
  return s;
}

}  // namespace shard::movement
