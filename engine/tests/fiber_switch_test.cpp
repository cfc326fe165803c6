// The fiber switch (fiber_switch.h): a context made by Boost.Context starts on
// the first jump, data travels both ways, and what the System V ABI says a call
// preserves (callee-saved registers, the rounding modes) is each context's own.
#include "core/fiber_switch.h"

#include <gtest/gtest.h>

#include <cfenv>
#include <cstdint>
#include <vector>

namespace shard::engine {
namespace {

constexpr std::size_t kStackBytes = 256u << 10;

struct Stack {
  std::vector<char> bytes = std::vector<char>(kStackBytes);
  char* top() { return bytes.data() + bytes.size(); }
};

FiberContext caller;  // where the fiber jumps back to

void echo_incremented(FiberTransfer from) {
  caller = from.fctx;
  auto* value = static_cast<intptr_t*>(from.data);
  for (;;) {
    ++*value;
    FiberTransfer back = jump_context(caller, value);
    caller = back.fctx;
    value = static_cast<intptr_t*>(back.data);
  }
}

TEST(FiberSwitch, FirstJumpStartsTheEntryAndDataTravelsBothWays) {
  Stack stack;
  FiberContext fiber = make_context(stack.top(), kStackBytes, echo_incremented);
  intptr_t value = 41;
  FiberTransfer back = jump_context(fiber, &value);
  EXPECT_EQ(back.data, &value);
  EXPECT_EQ(value, 42);
  for (int i = 0; i < 1000; ++i) back = jump_context(back.fctx, &value);
  EXPECT_EQ(value, 1042);
}

// Six values kept live across every jump; optimised, they sit in the
// callee-saved registers, so a switch that dropped one changes the result.
// Both sides run it, each with its own values.
__attribute__((noinline)) uint64_t mix_across_jumps(FiberContext* other, uint64_t seed, int rounds) {
  uint64_t a = seed, b = seed * 3, c = seed * 5, d = seed * 7, e = seed * 11, f = seed * 13;
  for (int i = 0; i < rounds; ++i) {
    *other = jump_context(*other, nullptr).fctx;
    a += b, b += c, c += d, d += e, e += f, f += a;
  }
  return a ^ b ^ c ^ d ^ e ^ f;
}

uint64_t mix_without_jumps(uint64_t seed, int rounds) {
  uint64_t a = seed, b = seed * 3, c = seed * 5, d = seed * 7, e = seed * 11, f = seed * 13;
  for (int i = 0; i < rounds; ++i) a += b, b += c, c += d, d += e, e += f, f += a;
  return a ^ b ^ c ^ d ^ e ^ f;
}

constexpr int kRounds = 100;
uint64_t fiber_mix = 0;

void mix_in_fiber(FiberTransfer from) {
  caller = from.fctx;
  fiber_mix = mix_across_jumps(&caller, 0x9e3779b9, kRounds);
  jump_context(caller, nullptr);
}

TEST(FiberSwitch, CalleeSavedRegistersSurviveOnBothSides) {
  Stack stack;
  FiberContext fiber = make_context(stack.top(), kStackBytes, mix_in_fiber);
  fiber = jump_context(fiber, nullptr).fctx;  // the fiber is now inside its loop
  uint64_t ours = mix_across_jumps(&fiber, 0x51ed270b, kRounds);
  EXPECT_EQ(ours, mix_without_jumps(0x51ed270b, kRounds));
  EXPECT_EQ(fiber_mix, mix_without_jumps(0x9e3779b9, kRounds));
}

int fiber_rounding = 0;

void round_upward(FiberTransfer from) {
  std::fesetround(FE_UPWARD);
  FiberContext back = jump_context(from.fctx, nullptr).fctx;
  fiber_rounding = std::fegetround();  // still its own after the caller's turn
  jump_context(back, nullptr);
}

TEST(FiberSwitch, RoundingModeIsPerContext) {
  ASSERT_EQ(std::fesetround(FE_TONEAREST), 0);
  Stack stack;
  FiberContext fiber = make_context(stack.top(), kStackBytes, round_upward);
  fiber = jump_context(fiber, nullptr).fctx;
  EXPECT_EQ(std::fegetround(), FE_TONEAREST);
  jump_context(fiber, nullptr);
  EXPECT_EQ(fiber_rounding, FE_UPWARD);
  EXPECT_EQ(std::fegetround(), FE_TONEAREST);
}

}  // namespace
}  // namespace shard::engine
