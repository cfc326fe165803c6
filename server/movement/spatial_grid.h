#pragma once
// Interest management: a uniform grid of cubic cells over one solar system.
// Each entity sits in the cell of its position; a range query visits only the
// cells the query's sphere overlaps, so its cost follows the crowd nearby, not
// the system's population. Cells live in a hash map keyed by their integer
// coordinates: a system is ~1e13 m wide and almost empty.

#include <cstdint>
#include <unordered_map>
#include <vector>

namespace shard::movement {

struct Vec3 {
  double x = 0, y = 0, z = 0;
};

double distance_squared(const Vec3& a, const Vec3& b);

class SpatialGrid final {
 public:
  explicit SpatialGrid(double cell_size);  // metres, > 0

  // Adds `id` at `position`, or moves it there if present.
  void place(std::uint64_t id, const Vec3& position);
  void remove(std::uint64_t id);
  // Every other entity within `radius` of `id`'s position (not `id` itself);
  // appended to `out`. Nothing if `id` is not in the grid.
  void in_range(std::uint64_t id, double radius, std::vector<std::uint64_t>& out) const;
  std::size_t size() const { return where_.size(); }
  std::size_t cells() const { return cells_.size(); }

 private:
  struct Key {
    std::int64_t x, y, z;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept;
  };
  struct Entry {
    Vec3 position;
    Key cell;
  };
  Key key_of(const Vec3& p) const;

  double cell_size_;
  std::unordered_map<Key, std::vector<std::uint64_t>, KeyHash> cells_;
  std::unordered_map<std::uint64_t, Entry> where_;
};

}  // namespace shard::movement
