// The fiber switch (fiber_switch.h): a context made by Boost.Context starts on
// the first jump, data travels both ways, and what the System V ABI says a call
// preserves (callee-saved registers, MXCSR, the x87 control word) is each
// context's own. The register and MXCSR checks are x86-64 assembly.
#include "core/fiber_switch.h"

#include <gtest/gtest.h>

#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include <cfenv>
#include <cstdint>
#include <cstring>
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

#if defined(__x86_64__)
#ifdef SHARD_OWN_FIBER_SWITCH
#define SHARD_TEST_JUMP "shard_jump_fcontext@PLT"
#else
#define SHARD_TEST_JUMP "jump_fcontext@PLT"
#endif

// marked_jump(to, data, marks, seen): a jump with the callee-saved registers
// rbx, rbp, r12-r15 holding marks[0..5], which stores what they hold when the
// jump returns into seen[0..5]. Written in assembly so that the values are in
// those registers, whatever the compiler would have kept there.
extern "C" FiberTransfer marked_jump(FiberContext to, void* data, const uint64_t* marks, uint64_t* seen);
asm(R"(
    .text
    .globl  marked_jump
    .type   marked_jump, @function
marked_jump:
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    pushq   %rcx                # seen; the stack is 16-byte aligned again
    movq    0x00(%rdx), %rbx
    movq    0x08(%rdx), %rbp
    movq    0x10(%rdx), %r12
    movq    0x18(%rdx), %r13
    movq    0x20(%rdx), %r14
    movq    0x28(%rdx), %r15
    call    )" SHARD_TEST_JUMP R"(
    popq    %rcx
    movq    %rbx, 0x00(%rcx)
    movq    %rbp, 0x08(%rcx)
    movq    %r12, 0x10(%rcx)
    movq    %r13, 0x18(%rcx)
    movq    %r14, 0x20(%rcx)
    movq    %r15, 0x28(%rcx)
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
    .size   marked_jump, .-marked_jump
)");

struct Marks {
  uint64_t values[6];
  explicit Marks(uint64_t seed) {
    for (int i = 0; i < 6; ++i) values[i] = seed * (i + 1) ^ 0x5a5a5a5a5a5a5a5aull;
  }
};

constexpr int kRounds = 100;
int fiber_mismatches = 0;

void jump_back_marked(FiberTransfer from) {
  const Marks marks(0x9e3779b97f4a7c15ull);
  FiberContext back = from.fctx;
  for (int i = 0; i < kRounds; ++i) {
    uint64_t seen[6] = {};
    back = marked_jump(back, nullptr, marks.values, seen).fctx;
    fiber_mismatches += std::memcmp(seen, marks.values, sizeof seen) != 0;
  }
  jump_context(back, nullptr);
}

TEST(FiberSwitch, CalleeSavedRegistersSurviveOnBothSides) {
  Stack stack;
  FiberContext fiber = make_context(stack.top(), kStackBytes, jump_back_marked);
  fiber = jump_context(fiber, nullptr).fctx;  // the fiber is now inside its loop
  const Marks marks(0x51ed270b2c9f4d3bull);
  int mismatches = 0;
  for (int i = 0; i < kRounds; ++i) {
    uint64_t seen[6] = {};
    fiber = marked_jump(fiber, nullptr, marks.values, seen).fctx;
    mismatches += std::memcmp(seen, marks.values, sizeof seen) != 0;
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(fiber_mismatches, 0);
}

// MXCSR: SSE rounding (bits 13-14), flush-to-zero (15), denormals-are-zero (6).
constexpr unsigned kFiberMxcsr = 0x1f80u | (3u << 13) | (1u << 15) | (1u << 6);
unsigned fiber_mxcsr = 0;

void set_own_mxcsr(FiberTransfer from) {
  _mm_setcsr(kFiberMxcsr);
  FiberContext back = jump_context(from.fctx, nullptr).fctx;
  fiber_mxcsr = _mm_getcsr();  // still its own after the caller's turn
  jump_context(back, nullptr);
}

TEST(FiberSwitch, SseControlRegisterIsPerContext) {
  const unsigned ours = _mm_getcsr();
  ASSERT_NE(ours, kFiberMxcsr);
  Stack stack;
  FiberContext fiber = make_context(stack.top(), kStackBytes, set_own_mxcsr);
  fiber = jump_context(fiber, nullptr).fctx;
  EXPECT_EQ(_mm_getcsr(), ours);
  jump_context(fiber, nullptr);
  EXPECT_EQ(fiber_mxcsr, kFiberMxcsr);
  EXPECT_EQ(_mm_getcsr(), ours);
}

#endif  // __x86_64__

// fesetround sets both the x87 control word and MXCSR; fegetround reads the
// x87 one, so this checks the x87 control word.
int fiber_rounding = 0;

void round_upward(FiberTransfer from) {
  std::fesetround(FE_UPWARD);
  FiberContext back = jump_context(from.fctx, nullptr).fctx;
  fiber_rounding = std::fegetround();  // still its own after the caller's turn
  jump_context(back, nullptr);
}

TEST(FiberSwitch, X87RoundingModeIsPerContext) {
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
