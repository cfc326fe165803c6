#pragma once
// A thread that takes the interpreter lock while the interpreter finalizes.
// CPython 3.11 ends it with pthread_exit: its forced unwind would reach the
// engine's noexcept frames (std::terminate: a crashed node, "terminate called
// without an active exception"), or run destructors that drop Python objects
// without the lock, or run off the bottom of a tasklet's fiber stack. The
// thread parks for good instead, holding nothing, as CPython 3.14 does itself
// (gh-87135): the process is exiting around it.

#include <cxxabi.h>
#include <unistd.h>

namespace shard::engine {

[[noreturn]] inline void park_thread_for_good() noexcept {
  for (;;) ::pause();
}

// Runs f, which may take the interpreter lock on a thread other than the one
// that finalizes. The catch block is never left: nothing there can switch
// tasklets or run Python.
template <class F>
void run_or_park_at_exit(F&& f) noexcept {
  try {
    f();
  } catch (abi::__forced_unwind&) {
    park_thread_for_good();
  }
}

}  // namespace shard::engine
