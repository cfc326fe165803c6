#pragma once
// The sol's native movement system (docs/movement.md). Movement frames arrive
// through a netproto native handler on the IO threads: parsed there (a bad one
// closes its connection at once) and queued; the game loop's tick applies
// them (sequence, bounds, speed), moves the entities in their system's grid,
// and sends each moved entity's new state to the connections of the entities
// within the system's interest radius. No Python and no interpreter lock on
// any of it: Python registers systems and entities and asks for summaries.
//
// Threads: on_frame() runs on any IO thread and touches only the inbox (one
// short mutex: a push_back) and atomic counters; everything else runs on the
// game loop's thread.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "shard/netproto/connection.h"
#include "shard/netproto/native_handlers.h"
#include "shard/wire/movement.pb.h"
#include "spatial_grid.h"

namespace shard::movement {

struct SystemConfig {
  Vec3 min, max;                // the system's bounds, metres
  double max_speed = 1000;      // m/s, for velocities and for distance moved
  double interest_radius = 1e5; // who hears of a move, metres
  double cell_size = 1e5;       // the grid's cell edge, metres
};

struct EntityState {
  std::uint32_t system_id = 0;
  Vec3 position;
  Vec3 velocity;
  float heading = 0;
  std::uint32_t sequence = 0;  // last applied
  bool has_sequence = false;
};

class MovementSystem final {
 public:
  struct Stats {
    std::uint64_t packets_in = 0;   // movement frames seen by the native handler
    std::uint64_t applied = 0;      // moves applied at a tick
    std::uint64_t rejected = 0;     // malformed or invalid: the sender was closed
    std::uint64_t stale = 0;        // sequence not newer than the last applied: dropped
    std::uint64_t unknown = 0;      // for an entity not registered (any more): dropped
    std::uint64_t updates_out = 0;  // Movement frames sent to entities in range
    std::uint64_t ticks = 0;
    std::size_t queued = 0;         // in the inbox now
  };
  // Game loop thread. A system's config is fixed once added (false: exists or invalid).
  bool add_system(std::uint32_t system_id, const SystemConfig& config);
  // The entity's moves arrive on `connection` (the client's, or the proxy link
  // its session uses) and its neighbours' updates go there. False with *error.
  bool add_entity(std::uint64_t entity_id, std::uint32_t system_id,
                  std::shared_ptr<netproto::Connection> connection, const Vec3& position, std::string* error);
  bool remove_entity(std::uint64_t entity_id);
  // `connection` carries many sessions (a proxy's link): a move it brings that
  // fails a check is dropped and its entity reported (take_offenders()), and
  // the link stays open, for one client's bad move must not cut every session
  // of that proxy. A move from any other connection that fails a check closes
  // it. Game loop thread.
  void add_shared_link(const std::shared_ptr<netproto::Connection>& connection);
  struct Offender {
    std::uint64_t entity_id;  // the frame's target (its entity)
    std::string reason;
  };
  // The entities whose moves a shared link brought and a check refused, since
  // the last call, oldest first (at most kMaxOffenders are kept between calls;
  // every refusal is counted in stats().rejected).
  std::vector<Offender> take_offenders();
  static constexpr std::size_t kMaxOffenders = 256;

  // The native handler for MessageKind::kMovement.
  void install(netproto::NativeHandlers& handlers);
  void on_frame(netproto::Connection& connection, const netproto::Frame& frame);

  // Game loop thread, phase 5: applies the inbox, then sends the updates
  // when the update interval has passed.
  void tick(double dt);

  // Each recipient gets its updates every `seconds` of ticks (0: at every
  // tick), each moved entity once with its latest state, back to back: a
  // proxy relays them to its client in one write and one TLS record (a client
  // hears of ~10 neighbours' moves a second; one write each was most of a
  // proxy's and a client's CPU). The recipients take turns, a share per
  // tick. Game loop thread.
  void set_update_interval(double seconds) { update_interval_s_ = seconds; }
  double update_interval() const { return update_interval_s_; }

  std::optional<EntityState> entity(std::uint64_t entity_id) const;
  std::vector<std::uint64_t> in_range(std::uint64_t entity_id, double radius) const;
  Stats stats() const;

 private:
  struct Incoming {
    std::shared_ptr<netproto::Connection> from;
    wire::Movement move;
  };
  struct Entity {
    EntityState state;
    std::shared_ptr<netproto::Connection> connection;
    double allowance_s = 0;     // travel time banked at max_speed (a token bucket)
    double allowance_at = 0;    // the system clock when it was last topped up
  };
  struct System {
    SystemConfig config;
    SpatialGrid grid;
  };
  // Closes `from` as a protocol error with the reason (logged by the
  // connection, with its peer), counted.
  void reject(netproto::Connection& from, const std::string& reason);
  // A check failed for a move of `entity_id` that came on `from`: on a shared
  // link the move is dropped and the entity reported (0: nobody), else
  // reject(). Any thread.
  void refuse(netproto::Connection& from, std::uint64_t entity_id, const std::string& reason);
  // Empty when the move is valid.
  std::string validate(const Entity& entity, const System& system, const wire::Movement& move) const;
  // The updates of the recipients whose turn this tick is (tick lasting `dt`),
  // each one's back to back.
  void send_updates(double dt);
  // `mover`'s update with its latest state, serialised once per tick into
  // payloads_; empty when it is gone.
  std::span<const std::uint8_t> serialized(std::uint64_t mover);

  mutable std::mutex inbox_mutex_;
  std::vector<Incoming> inbox_;  // guarded by inbox_mutex_
  std::vector<Incoming> draining_;  // the loop thread's: swapped with inbox_ each tick
  // Shared links by address; an expired entry is a link that closed (its
  // address may be a new connection's now). Guarded by inbox_mutex_.
  std::unordered_map<const netproto::Connection*, std::weak_ptr<netproto::Connection>> shared_links_;
  std::vector<Offender> offenders_;  // guarded by inbox_mutex_

  std::unordered_map<std::uint32_t, System> systems_;
  std::unordered_map<std::uint64_t, Entity> entities_;
  double clock_s_ = 0;  // sum of the ticks' dt
  double update_interval_s_ = 0;
  // Recipient -> the entities in its range that moved since its last update
  // (repeats allowed); an entry stays, emptied, while the recipient does.
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> pending_;
  // Scratch kept for its capacity: a tick's serialised updates, by mover.
  std::vector<std::uint8_t> payloads_;
  std::unordered_map<std::uint64_t, std::pair<std::uint32_t, std::uint32_t>> serialized_;
  std::vector<std::uint64_t> near_;
  std::atomic<std::uint64_t> packets_in_{0}, rejected_{0};
  std::uint64_t applied_ = 0, stale_ = 0, unknown_ = 0, updates_out_ = 0, ticks_ = 0;
};

}  // namespace shard::movement
