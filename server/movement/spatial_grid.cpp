#include "spatial_grid.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace shard::movement {

double distance_squared(const Vec3& a, const Vec3& b) {
  const double dx = a.x - b.x, dy = a.y - b.y, dz = a.z - b.z;
  return dx * dx + dy * dy + dz * dz;
}

SpatialGrid::SpatialGrid(double cell_size) : cell_size_(cell_size) {
  if (!(cell_size > 0) || !std::isfinite(cell_size)) throw std::invalid_argument("grid cell size must be > 0");
}

std::size_t SpatialGrid::KeyHash::operator()(const Key& k) const noexcept {
  // Three large odd multipliers: neighbouring cells land far apart.
  return static_cast<std::size_t>(k.x * 0x9E3779B97F4A7C15ull ^ k.y * 0xC2B2AE3D27D4EB4Full ^
                                  k.z * 0x165667B19E3779F9ull);
}

SpatialGrid::Key SpatialGrid::key_of(const Vec3& p) const {
  return {static_cast<std::int64_t>(std::floor(p.x / cell_size_)),
          static_cast<std::int64_t>(std::floor(p.y / cell_size_)),
          static_cast<std::int64_t>(std::floor(p.z / cell_size_))};
}

void SpatialGrid::place(std::uint64_t id, const Vec3& position) {
  const Key key = key_of(position);
  auto [it, inserted] = where_.try_emplace(id, Entry{position, key});
  if (!inserted) {
    it->second.position = position;
    if (it->second.cell == key) return;
    std::vector<std::uint64_t>& old = cells_[it->second.cell];
    old.erase(std::find(old.begin(), old.end(), id));
    if (old.empty()) cells_.erase(it->second.cell);
    it->second.cell = key;
  }
  cells_[key].push_back(id);
}

void SpatialGrid::remove(std::uint64_t id) {
  auto it = where_.find(id);
  if (it == where_.end()) return;
  std::vector<std::uint64_t>& cell = cells_[it->second.cell];
  cell.erase(std::find(cell.begin(), cell.end(), id));
  if (cell.empty()) cells_.erase(it->second.cell);
  where_.erase(it);
}

void SpatialGrid::in_range(std::uint64_t id, double radius, std::vector<std::uint64_t>& out) const {
  auto self = where_.find(id);
  if (self == where_.end() || !(radius >= 0)) return;
  const Vec3& c = self->second.position;
  const Key lo = key_of({c.x - radius, c.y - radius, c.z - radius});
  const Key hi = key_of({c.x + radius, c.y + radius, c.z + radius});
  const double r2 = radius * radius;
  auto visit = [&](const std::vector<std::uint64_t>& ids) {
    for (std::uint64_t other : ids) {
      if (other != id && distance_squared(where_.at(other).position, c) <= r2) out.push_back(other);
    }
  };
  // A sphere wider than the occupied cells: walk those instead of the box.
  const double span = (double(hi.x - lo.x) + 1) * (double(hi.y - lo.y) + 1) * (double(hi.z - lo.z) + 1);
  if (span > static_cast<double>(cells_.size())) {
    for (const auto& [key, ids] : cells_) visit(ids);
    return;
  }
  for (std::int64_t x = lo.x; x <= hi.x; ++x) {
    for (std::int64_t y = lo.y; y <= hi.y; ++y) {
      for (std::int64_t z = lo.z; z <= hi.z; ++z) {
        auto cell = cells_.find({x, y, z});
        if (cell != cells_.end()) visit(cell->second);
      }
    }
  }
}

}  // namespace shard::movement
