#include "shard/engine/stack_pool.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <set>
#include <string>

namespace shard::engine {
namespace {

constexpr StackPool::Sizes kSizes{64u << 10, 16u << 10};
constexpr StackPool::GuardPages kNoGuard{false, 0};
constexpr StackPool::GuardPages kGuard{true, std::size_t{1} << 40};

// Mappings (lines of /proc/self/maps) that lie within [low, high); all of them
// when no range is given.
std::size_t mappings(uintptr_t low = 0, uintptr_t high = UINTPTR_MAX) {
  std::ifstream maps("/proc/self/maps");
  std::size_t lines = 0;
  for (std::string line; std::getline(maps, line);) {
    uintptr_t start = std::stoull(line, nullptr, 16);
    uintptr_t end = std::stoull(line.substr(line.find('-') + 1), nullptr, 16);
    lines += start >= low && end <= high;
  }
  return lines;
}

TEST(StackPool, BlocksAreDistinctAndSized) {
  StackPool pool(kSizes, 8, kNoGuard);
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
  StackPool pool(kSizes, 8, kNoGuard);
  void* a = pool.acquire();
  pool.acquire();
  pool.release(a);
  EXPECT_EQ(pool.acquire(), a);
}

TEST(StackPool, BlocksAreWritableEndToEnd) {
  StackPool pool(kSizes, 4, kNoGuard);
  auto* block = static_cast<char*>(pool.acquire());
  block[0] = 1;
  block[pool.block_bytes() - 1] = 2;
  EXPECT_EQ(block[0] + block[pool.block_bytes() - 1], 3);
}

TEST(StackPool, TrimKeepsBlocksUsableAndZeroed) {
  StackPool pool(kSizes, 4, kNoGuard);
  auto* block = static_cast<char*>(pool.acquire());
  block[100] = 42;
  pool.release(block);
  pool.trim();
  auto* again = static_cast<char*>(pool.acquire());
  ASSERT_EQ(again, block);
  EXPECT_EQ(again[100], 0);
}

TEST(StackPool, FreshBlockHasAnIntactCanaryThatAnOverflowBreaks) {
  StackPool pool(kSizes, 4, kNoGuard);
  auto* block = static_cast<char*>(pool.acquire());
  EXPECT_TRUE(StackPool::stack_canary_intact(block));
  std::memset(block, 0xAA, 3);  // the last bytes an overflow writes, at the very end
  EXPECT_FALSE(StackPool::stack_canary_intact(block));
  pool.release(block);
  pool.trim();
  EXPECT_TRUE(StackPool::stack_canary_intact(pool.acquire()));
}

TEST(StackPool, StackLowEndIsTheCanary) {
  StackPool pool(kSizes, 4, kNoGuard);
  void* block = pool.acquire();
  StackPool::Layout layout = pool.layout(block);
  EXPECT_EQ(layout.stack_top - layout.stack_size, block);
}

#ifdef SHARD_SANITIZE_ADDRESS
// ASan reports the fault itself and exits.
#define EXPECT_SEGV(statement) EXPECT_DEATH(statement, "SEGV on unknown address")
#else
#define EXPECT_SEGV(statement) EXPECT_EXIT(statement, testing::KilledBySignal(SIGSEGV), "")
#endif

TEST(StackPoolGuardPages, WriteJustBelowAStackFaults) {
  StackPool pool(kSizes, 4, kGuard);
  auto* block = static_cast<char*>(pool.acquire());
  block[0] = 1;  // the stack's own lowest byte is usable
  EXPECT_EQ(pool.guarded_blocks(), 4u);
  EXPECT_SEGV(*static_cast<volatile char*>(block - 1) = 1);
}

TEST(StackPoolGuardPages, EachGuardedStackCostsTwoMappings) {
  constexpr std::size_t kBlocks = 32;
  StackPool pool(kSizes, kBlocks, kGuard);
  // The first block handed out is the slab's lowest, one guard page above its start.
  auto slab = reinterpret_cast<uintptr_t>(pool.acquire()) - static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const std::size_t slab_bytes = kBlocks * (pool.block_bytes() + sysconf(_SC_PAGESIZE));
  EXPECT_EQ(mappings(slab, slab + slab_bytes), 2 * kBlocks);
}

TEST(StackPoolGuardPages, SlabOverTheMapCountGoesUnguardedWithALoggedReason) {
  StackPool pool(kSizes, 4, {true, mappings() + StackPool::kMapHeadroom});
  testing::internal::CaptureStderr();
  auto* block = static_cast<char*>(pool.acquire());
  std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(pool.guarded_blocks(), 0u);
  EXPECT_NE(log.find("no guard pages for this slab of 4 tasklet stacks or later ones: it would exceed "
                     "vm.max_map_count"),
            std::string::npos)
      << log;
  block[-1] = 1;  // no guard below it
  block[0] = 1;
}

TEST(StackPool, RejectsSizesThatAreNotPages) {
  EXPECT_THROW(StackPool({1000, 4096}, 4, kNoGuard), std::invalid_argument);
}

}  // namespace
}  // namespace shard::engine
