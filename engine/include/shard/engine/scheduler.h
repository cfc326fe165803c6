#pragma once
// The per-thread scheduler: every OS thread that uses tasklets has one, with its
// own main tasklet (the thread's original stack) and runnable ring. The ring's
// head is the running tasklet while it is runnable, otherwise the one to run
// next. Round-robin moves the head forward; insert() adds at the end, just
// before the head.
//
// Every method runs with the GIL held, which guards the ring: on the owning
// thread, except make_runnable(), insert() and remove() of a tasklet of
// another thread, which change that thread's ring directly and poke its idle
// wait (IdleWake).

#include <Python.h>

#include <array>
#include <utility>
#include <cstdint>
#include <functional>
#include <vector>

#include "shard/engine/idle_wake.h"
#include "shard/engine/tasklet.h"
#include "shard/engine/tasklet_ring.h"
#include "shard/engine/watchdog_stack.h"
#include "shard/engine/parking.h"

namespace shard::engine {

class Scheduler final {
 public:
  // The calling thread's scheduler, or null (no error set) when the thread has
  // not used tasklets: for finalizers, deallocators and lookups that only need
  // an existing one. A lookup never creates: a thread that merely touches a
  // tasklet (a worker running a finalizer) must not get a scheduler for it.
  static Scheduler* existing() { return tls_current_; }
  // The calling thread's scheduler, created (with its main tasklet) on first
  // use; null with a Python error set if it cannot be. Only for the API entry
  // points that start tasklet use on a thread (getcurrent, tasklet(), a wait).
  static Scheduler* current_or_create() {
    Scheduler* sched = tls_current_;
    return sched != nullptr ? sched : create_for_this_thread();
  }
  // The live scheduler of a thread, or null (GIL held).
  static Scheduler* for_thread(unsigned long thread_id);
  // The tasklets with C state (started, not finished) of every running
  // thread's scheduler together (GIL held).
  static std::size_t started_tasklets_of_all_threads();
  // Appends those tasklets to a list (GIL held): stackless.getuncollectables().
  static bool append_started_tasklets(PyObject* list);

  // A thread that keeps a thread state but wakes tasklets only through work
  // counted by set_external_work (a dispatcher's worker) is no reason for an
  // idle thread to wait instead of reporting a deadlock. GIL held.
  static bool mark_passive_thread();  // false with a Python error
  static bool is_passive_thread(PyThreadState* tstate);

  Tasklet* main() const { return main_; }
  Tasklet* current_tasklet() const { return current_; }
  int runcount() const { return static_cast<int>(ring_.size()); }
  unsigned long thread_id() const { return thread_id_; }
  PyThreadState* tstate() const { return tstate_; }
  uint64_t switches() const { return switches_; }
  bool alive() const { return alive_; }

  // A scheduler outlives its thread while tasklets still name it (they then
  // report thread_id -1): its thread and every tasklet whose sched_ is this one
  // hold a count, and the last release() frees it. GIL held.
  void retain() { ++holders_; }
  void release();
  // Schedulers allocated, those of ended threads included (the leak check).
  static std::size_t allocated() { return allocated_; }

  void insert(Tasklet* t);  // at the end of the ring; takes a reference
  void remove(Tasklet* t);  // drops the ring's reference
  void insert_after_current(Tasklet* t);
  void move_before_head(Tasklet* t);  // t runs right after a switch to it returns

  // The top of the evaluation stack of the Python frame that called the switch
  // point about to run (args + nargs of a vectorcall): exposed to the GC while
  // the caller is suspended.
  void set_call_sp(PyObject* const* sp) { call_sp_ = sp; }

  // Switch points. Each returns what the resumed tasklet gets (a new reference:
  // its tempval, or None), or null with an exception set.
  PyObject* schedule(bool remove_current, PyObject* retval);
  PyObject* run_tasklet(Tasklet* t, bool pause_current);  // tasklet.run()/switch()
  // Switches away from current, which the caller has removed from the ring and
  // parked (on a channel); it runs again once made runnable. Fails with
  // RuntimeError (deadlock) when nothing could wake it: the caller then unparks
  // it and calls reinstate_current().
  PyObject* block_current();
  void reinstate_current();
  // Called on the calling thread's scheduler. Raises `exc` (owned) in t: now if
  // t is current, else at its resume; `immediate` switches to t at once when it
  // is in this thread.
  PyObject* throw_into(Tasklet* t, PyObject* exc, bool immediate);

  // Makes a tasklet runnable in its own thread (GIL held); takes a reference.
  static void make_runnable(Tasklet* t);
  // tasklet.insert()/run() of one of this scheduler's tasklets, called from
  // any thread with the GIL held: t joins the ring at the end, or right after
  // the running tasklet (`run_next`); a waiting owner is woken.
  void insert_from_any_thread(Tasklet* t, bool run_next);

  // Parking: the current tasklet leaves the ring without a channel until
  // wake() names its wait, or its deadline passes (0 = none). The waker may be
  // on any thread. Register the token where the waker will find it, then park.
  uint64_t prepare_park();
  // Returns None (new reference) or null with an exception; *timed_out says
  // whether the deadline ended the wait.
  PyObject* park(uint64_t token, int64_t deadline_ns, bool* timed_out);
  // Wakes t if it is still parked under `token`; false if someone else (a
  // timer, a kill, another waker) already did. GIL held.
  static bool wake(Tasklet* t, uint64_t token) { return Parking::wake(t, token); }

  // Sleepers: wakes every tasklet whose deadline has come; returns how many.
  int wake_due_timers(int64_t now_ns) { return parking_.wake_due(now_ns); }
  std::size_t timer_count() const { return parking_.timer_count(); }
  // Drops the entries of waits that ended early (each holds a tasklet).
  std::size_t drop_stale_timers() { return parking_.drop_stale(); }
  bool has_sleepers() const { return parking_.has_deadlines() && !loop_driven_; }

  // Work outside the scheduler that can make its tasklets runnable (off-thread
  // requests): called when the thread would otherwise wait idle, it dispatches
  // what finished and returns how much is still in flight. wake_idle() cuts
  // that wait short, from any thread.
  void set_external_work(std::function<uint64_t()> poll) { external_work_ = std::move(poll); }
  void wake_idle();
  // Sleepers or requests in flight: the ring will fill again by itself.
  bool expects_work();
  // The game loop wakes sleepers and dispatches completions in its own phases,
  // and run() inside it must return when the ring empties; without a loop the
  // scheduler does both whenever it looks for the next tasklet.
  void set_loop_driven(bool driven) { loop_driven_ = driven; }

  struct RunOptions {
    int64_t timeout_us = 0;
    bool threadblock = false;
    bool soft = false;
    int64_t totaltimeout_us = 0;
  };
  // stackless.run(): runs the ring with the current tasklet as its watchdog.
  PyObject* run_watchdog(const RunOptions& options);

  // The entering side of every switch, and a new fiber's first step: `from` is
  // where the leaving tasklet was suspended.
  void after_switch(boost::context::detail::fcontext_t from);
  // A fiber's body: runs the tasklet's callable, then switches to the next
  // tasklet for good (which gives the finished fiber's stack back).
  // Not noexcept: at interpreter exit, CPython's pthread_exit unwinds it to
  // the fiber entry, which parks the thread (core/park_at_exit.h).
  [[noreturn]] void run_body(Tasklet* self);

  // Kills every tasklet of this thread that has C state (interpreter exit), so
  // their finally blocks run and no stack is left behind.
  void kill_all_started();

  // The preemption timer asks whether the running tasklet is over its budget.
  bool preemption_due(int64_t now_ns);
  // Called at a safe point (between bytecodes) in the running tasklet.
  PyObject* preempt();

  // Where errors escaping tasklets go instead of the main tasklet (the game
  // loop logs them and goes on). Receives the tasklet and the exception.
  using ErrorSink = std::function<void(Tasklet*, PyObject*)>;
  void set_error_sink(ErrorSink sink) { error_sink_ = std::move(sink); }

  // Statistics for the game loop. Slices are measured while a timed run() is
  // active: the longest run without a switch since the last take, and who ran.
  struct LongestSlice {
    int64_t ns = 0;
    PyObject* tasklet = nullptr;  // owned by the caller after take
  };
  LongestSlice take_longest_slice();
  std::size_t tasklets_alive() const { return live_count_; }

 private:
  explicit Scheduler(PyThreadState* tstate);
  ~Scheduler();
  std::size_t holders_ = 1;  // the thread's own, until it ends
  static inline std::size_t allocated_ = 0;
  static Scheduler* create_for_this_thread();
  static inline thread_local Scheduler* tls_current_ = nullptr;
  friend void scheduler_thread_ended(PyObject* capsule);
  void thread_ended();

  using WakeReason = WatchdogStack::WakeReason;
  using Watchdog = WatchdogStack::Watchdog;

  PyObject* switch_to(Tasklet* next);
  // switch_to's answer under stackless.switch_trap(): RuntimeError, no switch.
  [[gnu::cold]] PyObject* refuse_switch();
  // Gives a new tasklet its stack block and first frame, ready to be jumped
  // to (a no-op when it has them); throws std::system_error when no stack can
  // be had. It counts as started once the switch to it is under way.
  void reserve_stack(Tasklet* t);
  void mark_started(Tasklet* t);
  // reserve_stack() for a tasklet the scheduler picked: one that cannot get a
  // stack is set aside (false). Runs no Python code and throws nothing: it is
  // called in the switch path.
  bool ensure_stack(Tasklet* t) noexcept { return t->started_ || reserve_or_set_aside(t); }
  bool reserve_or_set_aside(Tasklet* t) noexcept;
  // Takes `t` out of the ring onto unstartable_; without a game loop, makes
  // the receiver of its error runnable at once, so the error is not lost.
  void set_aside_unstartable(Tasklet* t, const char* why) noexcept;
  // At a safe point (no switch under way, the running tasklet's own state in
  // place): each set-aside tasklet dies with MemoryError("cannot start a
  // tasklet: <why>"), logged by the error sink or passed to main / the
  // innermost run(). Runs Python code; keeps the caller's pending error.
  void report_unstartable() noexcept;
  // error_sink_(t, error), with no C++ exception escaping (it runs inside
  // run_body too).
  void call_error_sink(Tasklet* t, PyObject* error) noexcept;
  // Where an error escaping a tasklet goes without a game loop: the innermost
  // run(), else the main tasklet.
  Tasklet* error_receiver();
  void enter(Tasklet* next);
  Tasklet* pick_next(bool* deadlock);
  // Main is paused (not runnable, blocked or parked) and is not the caller.
  bool main_floating() const;
  Tasklet* wake_watchdog(Watchdog& w, WakeReason reason);
  bool soft_watchdog_due();
  bool idle_wait();
  PyObject* resume_value(Tasklet* t);
  // The resumed tasklet's first step back in its own code, after a switch or a
  // pick that chose it again: takes its resume value (first: a finalizer run
  // next may switch and resume it again), then does the switch's deferred
  // work. An error that work passed to this very tasklet replaces the value.
  PyObject* resume_here(Tasklet* self);
  void pass_exception_to_main(PyObject* exc);
  bool other_threads_exist() const;

  PyThreadState* tstate_;
  unsigned long thread_id_;
  bool alive_ = true;
  Tasklet* main_ = nullptr;      // owned
  Tasklet* current_ = nullptr;   // owned
  TaskletRing ring_;             // the runnable tasklets
  uint64_t switches_ = 0;
  PyObject* const* call_sp_ = nullptr;

  Tasklet* switching_from_ = nullptr;
  // The stack block of a tasklet that finished and switched away for good,
  // released on the entering side.
  void* finished_block_ = nullptr;
  // References a switch lets go of, dropped by release_after_switch() once the
  // switch is complete: dropping one may run a finalizer, and no Python code
  // may run inside the switch path (the thread state is half handed over
  // there). [0]: the leaving tasklet's `current_` reference (a finished
  // tasklet cannot drop its last reference on its own stack either); [1]: the
  // tasklet a timed run() no longer holds as the longest slice; [2]: what a
  // blocked error receiver was passing when an unstartable tasklet woke it.
  std::array<PyObject*, 3> release_after_switch_{};
  // Drops them and reports the unstartable tasklets: called on the entering
  // side once the resumed tasklet's state is restored and its resume value
  // taken, where its own code may run again.
  void release_after_switch() {
    // The leaving tasklet's reference is the common case; the rest is rare.
    PyObject* leaving = std::exchange(release_after_switch_[0], nullptr);
    if (release_after_switch_[1] != nullptr || release_after_switch_[2] != nullptr || !unstartable_.empty())
        [[unlikely]] {
      release_rest_after_switch();
    }
    Py_XDECREF(leaving);
  }
  void release_rest_after_switch();
  // Tasklets picked to run that could not get a stack, set aside by
  // ensure_stack() until report_unstartable(); their ring links are free.
  TaskletRing unstartable_;
  // Why the last one could not (the StackPool error), kept without allocating.
  char unstartable_why_[256] = {};

  void link_live(Tasklet* t);
  void unlink_live(Tasklet* t);
  Tasklet* live_head_ = nullptr;  // tasklets with C state, linked through live_next_/live_prev_
  std::size_t live_count_ = 0;
  ErrorSink error_sink_;
  LongestSlice longest_slice_;

  WatchdogStack watchdogs_;     // the active stackless.run() calls
  Parking parking_;             // tasklets waiting outside the ring: tokens and deadlines
  IdleWake idle_wake_;          // pokes this thread's idle wait from other threads
  bool loop_driven_ = false;
  std::function<uint64_t()> external_work_;
};

}  // namespace shard::engine
