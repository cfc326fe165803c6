// The interest grid: range queries find exactly the entities within the radius,
// across cell borders, after moves and removals.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>

#include "spatial_grid.h"

namespace shard::movement {
namespace {

std::vector<std::uint64_t> query(const SpatialGrid& grid, std::uint64_t id, double r) {
  std::vector<std::uint64_t> out;
  grid.in_range(id, r, out);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SpatialGrid, FindsNeighboursAcrossCellBordersButNotFarOnes) {
  SpatialGrid grid(100);
  grid.place(1, {99, 0, 0});
  grid.place(2, {101, 0, 0});    // next cell, 2 m away
  grid.place(3, {-50, 0, 0});    // negative cell, 149 m away
  grid.place(4, {500, 500, 0});  // far
  EXPECT_EQ(query(grid, 1, 150), (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(query(grid, 1, 10), (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(query(grid, 4, 150), std::vector<std::uint64_t>{});
}

TEST(SpatialGrid, MovesAndRemovalsUpdateTheCells) {
  SpatialGrid grid(10);
  grid.place(1, {0, 0, 0});
  grid.place(2, {1000, 0, 0});
  EXPECT_TRUE(query(grid, 1, 50).empty());
  grid.place(2, {5, 5, 5});
  EXPECT_EQ(query(grid, 1, 50), std::vector<std::uint64_t>{2});
  EXPECT_EQ(grid.cells(), 1u);
  grid.remove(2);
  EXPECT_TRUE(query(grid, 1, 50).empty());
  EXPECT_EQ(grid.size(), 1u);
  EXPECT_TRUE(query(grid, 2, 50).empty());  // not in the grid
}

TEST(SpatialGrid, AgreesWithABruteForceScanOnRandomPoints) {
  std::mt19937_64 random(7);
  std::uniform_real_distribution<double> coordinate(-1000, 1000);
  SpatialGrid grid(64);
  std::vector<Vec3> points(300);
  for (std::size_t i = 0; i < points.size(); ++i) {
    points[i] = {coordinate(random), coordinate(random), coordinate(random)};
    grid.place(i + 1, points[i]);
  }
  for (double radius : {0.0, 50.0, 300.0, 5000.0}) {  // 5000: wider than the occupied cells
    for (std::size_t i = 0; i < points.size(); i += 17) {
      std::vector<std::uint64_t> expected;
      for (std::size_t j = 0; j < points.size(); ++j) {
        if (j != i && distance_squared(points[i], points[j]) <= radius * radius) expected.push_back(j + 1);
      }
      EXPECT_EQ(query(grid, i + 1, radius), expected) << "radius " << radius << " around " << i + 1;
    }
  }
}

TEST(SpatialGrid, RefusesANonPositiveCellSize) {
  EXPECT_THROW(SpatialGrid(0), std::invalid_argument);
  EXPECT_THROW(SpatialGrid(-1), std::invalid_argument);
}

}  // namespace
}  // namespace shard::movement
