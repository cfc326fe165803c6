#pragma once
// The watchdog of stackless.run(timeout): interrupting a tasklet that runs too
// long without switching, but only between two bytecodes of its Python code,
// never inside C code that merely checks for signals (time.sleep, an IO retry).
//
// How: while a timed run() is active, a per-thread POSIX timer sends a
// real-time signal to that thread. Its handler touches only atomics and the
// thread state's trace slot: when the running tasklet is over its budget (and
// no debugger or profiler owns the trace slot) it installs a one-shot C trace
// function and raises the eval breaker. The eval loop calls that function at
// its next instruction boundary; there, with the GIL held and the interpreter
// consistent, the function removes itself and asks the scheduler to preempt
// (which checks again, atomic tasklets included). C code never sees a switch.

#include <Python.h>

#include <cstddef>
#include <cstdint>
#include <functional>

namespace shard::engine {

class Scheduler;

class Preemption final {
 public:
  // POSIX timers this process holds (one per thread that has armed a scope,
  // until that thread ends).
  static std::size_t timers_alive();
};

// Disarms on destruction what arm()/arm_report() armed. Only the first armed
// scope of a thread counts; arming while one is armed is a successful no-op.
// Arming fails (false, with OSError set: which call failed, errno, a hint)
// when the thread's timer cannot be made, e.g. under RLIMIT_SIGPENDING.
class PreemptionScope final {
 public:
  PreemptionScope() = default;
  // Interrupts; budgets in nanoseconds (0 = none).
  bool arm(Scheduler* sched, int64_t timeout_ns, int64_t deadline_ns);
  // Report-only: calls `report` once, at a safe point inside a tasklet that has
  // run longer than `limit_ns` (0 = never) without switching (the game loop's long-run log).
  bool arm_report(Scheduler* sched, int64_t limit_ns, std::function<void(int64_t ran_ns)> report);
  ~PreemptionScope();
  PreemptionScope(const PreemptionScope&) = delete;
  PreemptionScope& operator=(const PreemptionScope&) = delete;

 private:
  bool armed_ = false;
};

}  // namespace shard::engine
