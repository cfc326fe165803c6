#pragma once
// What runs around every jump between tasklet stacks, besides the jump:
//
// - check_leaving_stack: the leaving tasklet's stack canary (StackPool). A
//   stack has no guard page by default, so a deep C call that ran past its low
//   end has silently written over the block below; the next switch-out is the
//   first moment we look, and the process stops there with the tasklet named.
// - sanitizer_start_switch / sanitizer_finish_switch: AddressSanitizer's
//   fiber-switch annotations (SHARD_SANITIZE builds only). ASan keeps shadow
//   state per stack; without them it takes the jump for a wild stack-pointer
//   move and reports false stack overflows or misses real ones.
#include <cstddef>

#include "shard/engine/stack_pool.h"
#include "shard/engine/tasklet.h"

#ifdef SHARD_SANITIZE_ADDRESS
#include <pthread.h>
#include <sanitizer/common_interface_defs.h>
#endif

namespace shard::engine {

// Writes what is known about the tasklet and its stack to stderr and aborts:
// the memory below the stack is already corrupt. Runs no Python.
[[noreturn]] void stack_overflowed(const Tasklet* t) noexcept;

// The main tasklet runs on its thread's own stack and has no canary.
inline void check_leaving_stack(const Tasklet* leaving) noexcept {
  if (leaving->stack_block_ != nullptr && !StackPool::stack_canary_intact(leaving->stack_block_)) [[unlikely]] {
    stack_overflowed(leaving);
  }
}

#ifdef SHARD_SANITIZE_ADDRESS
// The bounds of this thread's own stack, where its main tasklet runs.
inline void thread_stack_bounds(const void** bottom, std::size_t* size) noexcept {
  static thread_local const void* cached_bottom = nullptr;
  static thread_local std::size_t cached_size = 0;
  if (cached_size == 0) {
    pthread_attr_t attr;
    void* address = nullptr;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      pthread_attr_getstack(&attr, &address, &cached_size);
      pthread_attr_destroy(&attr);
    }
    cached_bottom = address;
  }
  *bottom = cached_bottom;
  *size = cached_size;
}

// Just before jumping to `to`. `fake_stack_save` is null for a fiber that
// leaves for good: ASan then frees the fiber's fake stack (where instrumented
// frames keep their locals under detect_stack_use_after_return), so this
// function must not have a frame there itself: returning would write to it.
__attribute__((no_sanitize("address"))) inline void sanitizer_start_switch(void** fake_stack_save,
                                                                           const Tasklet* to) noexcept {
  const void* bottom = nullptr;
  std::size_t size = 0;
  if (to->is_main_) {
    thread_stack_bounds(&bottom, &size);
  } else {
    StackPool::Layout layout = StackPool::instance().layout(to->stack_block_);
    bottom = layout.stack_top - layout.stack_size;
    size = layout.stack_size;
  }
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
}

// First thing on the entered side: null for a fiber's first entry.
inline void sanitizer_finish_switch(void* fake_stack_save) noexcept {
  __sanitizer_finish_switch_fiber(fake_stack_save, nullptr, nullptr);
}
#else
inline void sanitizer_start_switch(void**, const Tasklet*) noexcept {}
inline void sanitizer_finish_switch(void*) noexcept {}
#endif

}  // namespace shard::engine
