// The scheduler's parts on their own: the tasklet ring, the watchdog stack and
// the idle wait's wake-up. They hold tasklets only by pointer and reference count,
// so plain Tasklet structs stand in (no interpreter needed: no count reaches 0).
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "shard/engine/idle_wake.h"
#include "shard/engine/tasklet_ring.h"
#include "shard/engine/watchdog_stack.h"

namespace shard::engine {
namespace {

std::vector<Tasklet*> members(const TaskletRing& ring) {
  std::vector<Tasklet*> seen;
  ring.for_each([&](Tasklet* t) { seen.push_back(t); });
  return seen;
}

TEST(TaskletRing, PushBackQueuesInFifoOrderAndTakesAReference) {
  Tasklet a{}, b{}, c{};
  TaskletRing ring;
  ring.push_back(&a);
  ring.push_back(&b);
  ring.push_back(&c);
  EXPECT_EQ(members(ring), (std::vector<Tasklet*>{&a, &b, &c}));
  EXPECT_EQ(ring.size(), 3u);
  EXPECT_EQ(Py_REFCNT(reinterpret_cast<PyObject*>(&b)), 1);
}

TEST(TaskletRing, PushBackAddsRightBeforeTheHead) {
  Tasklet a{}, b{}, c{};
  TaskletRing ring;
  ring.push_back(&a);
  ring.push_back(&b);
  ring.set_head(&b);  // round-robin moved on: b runs next
  ring.push_back(&c);
  EXPECT_EQ(members(ring), (std::vector<Tasklet*>{&b, &a, &c}));
}

TEST(TaskletRing, UnlinkingTheHeadPassesItOnAndKeepsTheReferenceForTheCaller) {
  Tasklet a{}, b{};
  TaskletRing ring;
  ring.push_back(&a);
  ring.push_back(&b);
  EXPECT_EQ(ring.unlink(&a), &a);
  EXPECT_EQ(ring.head(), &b);
  EXPECT_EQ(a.next_, nullptr);
  EXPECT_EQ(Py_REFCNT(reinterpret_cast<PyObject*>(&a)), 1);
  ring.unlink(&b);
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.head(), nullptr);
  EXPECT_EQ(ring.size(), 0u);
}

TEST(WatchdogStack, OnlyTheFirstTimedEntryIsTimedAndItEndsWithItsEntry) {
  Tasklet outer{}, timed{}, inner{};
  WatchdogStack stack;
  stack.push({&outer, 0, 0, false});
  EXPECT_EQ(stack.timed(), nullptr);
  stack.push({&timed, 1000, 0, false});
  stack.push({&inner, 5000, 0, false});
  ASSERT_NE(stack.timed(), nullptr);
  EXPECT_EQ(stack.timed()->tasklet, &timed);
  EXPECT_EQ(stack.innermost()->tasklet, &inner);
  // An outer run() leaving pops the inner entries that died with it, the timed
  // one among them: no timed state may survive its entry.
  EXPECT_EQ(stack.pop_through(&outer), nullptr);
  EXPECT_TRUE(stack.empty());
  EXPECT_EQ(stack.timed(), nullptr);
  EXPECT_EQ(stack.innermost(), nullptr);
}

TEST(WatchdogStack, PopThroughReportsTheInnerEntriesItOutlived) {
  Tasklet outer{}, middle{}, inner{};
  WatchdogStack stack;
  stack.push({&outer, 0, 0, false});
  stack.push({&middle, 0, 0, false});
  stack.push({&inner, 0, 0, false});
  std::vector<Tasklet*> outlived;
  EXPECT_EQ(stack.pop_through(&outer, &outlived), nullptr);
  EXPECT_EQ(outlived, (std::vector<Tasklet*>{&inner, &middle}));
  EXPECT_TRUE(stack.empty());
}

TEST(WatchdogStack, FindReturnsTheInnermostEntryOfATasklet) {
  Tasklet a{}, b{};
  WatchdogStack stack;
  stack.push({&a, 0, 0, false});
  stack.push({&b, 0, 0, false});
  stack.push({&a, 0, 0, true});
  EXPECT_TRUE(stack.find(&a)->soft);
  EXPECT_EQ(stack.find(&b)->tasklet, &b);
}

TEST(IdleWake, APokeFromAnotherThreadEndsTheWait) {
  IdleWake wake;
  std::thread poker([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    wake.poke();
  });
  int64_t started = now_ns();
  wake.wait_until(started + 10'000'000'000);  // 10 s: far beyond the poke
  EXPECT_LT(now_ns() - started, 5'000'000'000) << "suspected deadlock: the poke did not end the wait";
  poker.join();
}

TEST(IdleWake, APokeMadeBeforeTheWaitIsNotLost) {
  IdleWake wake;
  wake.poke();
  int64_t started = now_ns();
  wake.wait_until(started + 10'000'000'000);
  EXPECT_LT(now_ns() - started, 5'000'000'000) << "the poke before the wait was lost";
  // ...and counts once: the next wait runs to its deadline.
  started = now_ns();
  wake.wait_until(started + 20'000'000);
  EXPECT_GE(now_ns() - started, 19'000'000);
}

}  // namespace
}  // namespace shard::engine
