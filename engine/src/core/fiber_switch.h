#pragma once
// The machine-level switch between tasklet stacks. Boost.Context lays out the
// first frame of a fresh stack (make_fcontext) and defines the frame format;
// switching goes through jump_context().
//
// On x86-64 the switch is our own shard_jump_fcontext (fiber_switch_x86_64.S):
// Boost's jump_fcontext, frame for frame, except that it leaves through `ret`.
// Boost 1.74 leaves through an indirect `jmp`, so the return address its caller
// pushed stays on the CPU's return-address predictor: every return the resumed
// side then makes up its call chain pops the wrong entry and is mispredicted.
// Two tasklets that switch from the same call chain (a channel ping-pong) paid
// about 50 ns per round trip for that; with `ret` their return addresses are
// predicted. Elsewhere Boost's own jump_fcontext is used.

#include <boost/context/detail/fcontext.hpp>
#include <cassert>

// The System V x86-64 ABI with 64-bit pointers (not x32): the same test guards
// the .S, and engine/CMakeLists.txt adds the .S on the same platforms.
#if defined(__x86_64__) && defined(__linux__) && !defined(__ILP32__)
#define SHARD_OWN_FIBER_SWITCH 1
extern "C" boost::context::detail::transfer_t shard_jump_fcontext(
    boost::context::detail::fcontext_t to, void* data);
#endif

namespace shard::engine {

using FiberContext = boost::context::detail::fcontext_t;
using FiberTransfer = boost::context::detail::transfer_t;

// A context that starts `entry` on the stack below `stack_top`; the first
// jump_context() to it calls entry with {the jumping context, its data}.
// `entry` must never return: a fiber ends by jumping away for good.
inline FiberContext make_context(char* stack_top, std::size_t stack_size, void (*entry)(FiberTransfer)) {
  return boost::context::detail::make_fcontext(stack_top, stack_size, entry);
}

// Suspends the caller and resumes `to`, passing it `data`. Returns when some
// context jumps back, with that context and the data it passed.
inline FiberTransfer jump_context(FiberContext to, void* data) {
  assert(to != nullptr && "jumping to a context that is running or already resumed");
#ifdef SHARD_OWN_FIBER_SWITCH
  return shard_jump_fcontext(to, data);
#else
  return boost::context::detail::jump_fcontext(to, data);
#endif
}

}  // namespace shard::engine
