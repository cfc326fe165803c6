#pragma once
// The fixed-FPS game loop, run by the main tasklet of the main thread. Each
// frame has five phases:
//   1 wait      for completions until the frame's deadline, or until woken
//               (an idle node sleeps in ppoll; a late frame does not wait)
//   2 dispatch  completions are made runnable (the main_loop strategy, and the
//               backstop for every other strategy)
//   3 timers    sleepers whose time has come and tasklets that yielded
//               (uthread.BeNice) are made runnable
//   4 run       the scheduler with a soft budget: run(soft=True,
//               totaltimeout=budget) never interrupts a tasklet, it stops at
//               the first switch after the budget
//   5 tick      native tick hooks, then Python tick hooks
// Errors escaping tasklets and tick hooks are logged (logger "shard.loop") and
// the loop goes on; a tasklet that runs past the long-run limit without
// switching is logged once with its traceback. SIGINT/SIGTERM stop the loop at
// the end of the frame; registered services are then killed (TaskletExit, their
// finally blocks run) and run() returns.

#include <Python.h>

#include <atomic>
#include <cstdint>
#include <vector>

namespace shard::engine {

class Scheduler;

struct FrameStats {
  uint64_t frame = 0;
  int64_t frame_ns = 0;     // start of phase 1 to end of phase 5
  int64_t wait_ns = 0;      // phase 1's idle time
  // Phase 1's time running the tasklets that main_thread_callback or
  // pending_call woke while it waited (busy, not idle), and how many such runs.
  int64_t wait_run_ns = 0;
  int wait_runs = 0;
  int64_t dispatch_ns = 0;  // phase 2
  int64_t timers_ns = 0;    // phase 3
  int64_t run_ns = 0;       // phase 4
  int64_t run_budget_ns = 0;  // phase 4's soft budget this frame (less when the frame started late)
  int64_t tick_ns = 0;      // phase 5
  bool overrun = false;     // phases 2-5 ended past the next frame's deadline
  int dispatched = 0;
  int woken = 0;            // sleepers and yielders made runnable
  int runnable = 0;         // in the ring after phase 4 (the loop's own main tasklet included)
  std::size_t alive = 0;    // tasklets with C state
  uint64_t switches = 0;
  int64_t longest_slice_ns = 0;
  PyObject* longest_slice_tasklet = nullptr;  // owned; null when none ran
};

class GameLoop final {
 public:
  static GameLoop& instance();  // one per process; run() only on the main thread

  // Runs frames until stop(); returns None, or null with an error set.
  PyObject* run();
  void stop();   // any thread
  void wake();   // any thread: end phase 1 early (async-signal-safe)
  bool running() const { return running_; }

  void set_fps(double fps);
  double fps() const { return fps_.load(); }
  void set_run_budget(double fraction) { run_budget_fraction_.store(fraction); }
  void set_long_run_limit_ms(double ms) { long_run_limit_ms_ = ms; }

  // Python tick hooks: called as hook(frame_stats_dict-free args: frame, dt).
  int add_tick(PyObject* callable);
  int remove_tick(PyObject* callable);
  int register_service(PyObject* tasklet);
  // Native tick hooks: C++ called first in phase 5, no Python call, in the
  // order added (the movement system). Main thread; `fn` must not throw.
  using NativeTick = void (*)(void* context, uint64_t frame, double dt);
  void add_native_tick(NativeTick fn, void* context);
  void remove_native_tick(NativeTick fn, void* context);

  // uthread.BeNice inside the loop: park until phase 3 of the next frame.
  PyObject* be_nice();

  const FrameStats& last_frame() const { return last_; }
  uint64_t frames() const { return last_.frame; }
  uint64_t overruns() const { return overruns_; }
  int64_t busy_ns() const { return busy_ns_; }

 private:
  GameLoop();
  // The frames until stop or an error; a C++ exception in one ends them as a
  // Python error (run() undoes its set-up either way).
  void run_frames() noexcept;
  void frame(int64_t* deadline);
  // Phase 1; false when a signal handler raised or a woken tasklet ended the
  // loop (the error is set).
  bool wait_until(int64_t deadline, int64_t period, FrameStats& stats);
  // Runs the tasklets a mid-frame dispatch woke during phase 1, within the
  // frame's run budget and before `deadline`; false as run_tasklets.
  bool run_woken_while_waiting(int64_t deadline, int64_t period, FrameStats& stats);
  // The scheduler for at most `budget_ns` (soft); an error a tasklet passed
  // to the loop is logged. False: SystemExit or KeyboardInterrupt (set).
  bool run_tasklets(int64_t budget_ns);
  void run_ticks(FrameStats& stats, double dt);
  // Makes the tasklets parked in be_nice() runnable; returns how many were woken.
  int wake_yielders();
  void log_tasklet_error(PyObject* tasklet, PyObject* exc);
  void report_long_run(int64_t ran_ns);
  void shutdown_services();
  // SIGINT/SIGTERM stop the loop, through signal.set_wakeup_fd's pipe. All or
  // nothing: false (error set) with nothing left installed.
  bool install_signal_handlers();
  void restore_signal_handlers();  // what install recorded; keeps the error set

  Scheduler* sched_ = nullptr;  // the main thread's, set by run()
  std::atomic<double> fps_{30.0};
  std::atomic<double> run_budget_fraction_{0.5};
  double long_run_limit_ms_ = 50.0;
  std::atomic<bool> stop_requested_{false};
  bool running_ = false;
  bool in_frames_ = false;  // frames are being run: be_nice() parks until the next one
  int wake_fd_ = -1;      // eventfd: completions and stop() end phase 1
  int signal_fd_[2] = {-1, -1};  // signal.set_wakeup_fd pipe
  PyObject* old_wakeup_fd_ = nullptr;
  PyObject* old_handlers_[2] = {nullptr, nullptr};
  PyObject* python_ticks_;    // list
  std::vector<std::pair<NativeTick, void*>> native_ticks_;
  PyObject* services_;        // list of tasklets
  std::vector<std::pair<PyObject*, uint64_t>> yielders_;  // owned tasklets, wait tokens
  FrameStats last_;
  uint64_t overruns_ = 0;
  int64_t busy_ns_ = 0;       // phases 2-5 and phase 1's runs, summed over all frames
};

}  // namespace shard::engine
