#include "shard/engine/stack_pool.h"

#include <gtest/gtest.h>

#include <set>

namespace shard::engine {
namespace {

constexpr StackPool::Sizes kSizes{64u << 10, 16u << 10};

TEST(StackPool, BlocksAreDistinctAndSized) {
  StackPool pool(kSizes, 8);
  std::set<char*> blocks;
  for (int i = 0; i < 20; ++i) blocks.insert(static_cast<char*>(pool.acquire()));
  EXPECT_EQ(blocks.size(), 20u);
  char* previous = nullptr;
  for (char* block : blocks) {
    if (previous != nullptr) {
      EXPECT_GE(block - previous, static_cast<long>(pool.block_bytes()));
    }
    previous = block;
  }
  EXPECT_EQ(pool.blocks_in_use(), 20u);
  EXPECT_EQ(pool.slabs(), 3u);
}

TEST(StackPool, ReleasedBlockIsReusedFirst) {
  StackPool pool(kSizes, 8);
  void* a = pool.acquire();
  pool.acquire();
  pool.release(a);
  EXPECT_EQ(pool.acquire(), a);
}

TEST(StackPool, BlocksAreWritableEndToEnd) {
  StackPool pool(kSizes, 4);
  auto* block = static_cast<char*>(pool.acquire());
  block[0] = 1;
  block[pool.block_bytes() - 1] = 2;
  EXPECT_EQ(block[0] + block[pool.block_bytes() - 1], 3);
}

TEST(StackPool, TrimKeepsBlocksUsableAndZeroed) {
  StackPool pool(kSizes, 4);
  auto* block = static_cast<char*>(pool.acquire());
  block[100] = 42;
  pool.release(block);
  pool.trim();
  auto* again = static_cast<char*>(pool.acquire());
  ASSERT_EQ(again, block);
  EXPECT_EQ(again[100], 0);
}

TEST(StackPool, RejectsSizesThatAreNotPages) {
  EXPECT_THROW(StackPool({1000, 4096}), std::invalid_argument);
}

}  // namespace
}  // namespace shard::engine
