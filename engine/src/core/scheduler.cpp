#include "shard/engine/scheduler.h"

#include "core/clock.h"
#include "core/cxx_boundary.h"
#include "core/fiber_switch.h"
#include "core/slice_clock.h"
#include "core/switch_checks.h"
#include "core/switch_hooks.h"
#include "shard/engine/stack_pool.h"

#include <utility>

namespace shard::engine {

// ---------------------------------------------------------------- the ring

void Scheduler::insert(Tasklet* t) {
  t->in_ring_ = true;
  ring_.push_back(t);
}

void Scheduler::remove(Tasklet* t) {
  ring_.unlink(t);
  t->in_ring_ = false;
  Py_DECREF(t);
}

void Scheduler::insert_after_current(Tasklet* t) {
  Tasklet* head = ring_.head();
  ring_.set_head(current_->in_ring_ ? current_->next_ : ring_.head());
  insert(t);
  ring_.set_head(head != nullptr ? head : t);
}

void Scheduler::move_before_head(Tasklet* t) {
  // Used to run t next: it goes to the end, then becomes the head.
  if (t->in_ring_) {
    Py_INCREF(t);
    remove(t);
    insert(t);
    Py_DECREF(t);
  } else {
    insert(t);
  }
}

// ---------------------------------------------------------------- switching

void Scheduler::enter(Tasklet* next) {
  // Hand `current_` over to next; the leaving tasklet's reference is dropped on
  // the other side, once the switch is complete.
  Tasklet* leaving = current_;
  release_after_switch_[0] = reinterpret_cast<PyObject*>(leaving);
  switching_from_ = leaving;
  Py_INCREF(next);
  current_ = next;
  ring_.set_head(next);
  ++switches_;
  if (watchdogs_.timed() != nullptr) {
    int64_t now = now_ns();
    const int64_t ran = now - SliceClock::start();  // the slice that ends here is the leaving tasklet's
    if (ran > longest_slice_.ns) {
      longest_slice_.ns = ran;
      Py_INCREF(leaving);
      release_after_switch_[1] = std::exchange(longest_slice_.tasklet, reinterpret_cast<PyObject*>(leaving));
    }
    SliceClock::begin(now);
  }
  if (next->started_) next->pystate_.restore(tstate_);
}

PyObject* Scheduler::switch_to(Tasklet* next) {
  Tasklet* self = current_;
  if (hooks::switch_hooks_in_use != 0) [[unlikely]] {
    if (hooks::switch_trap != 0) return refuse_switch();
    if (hooks::schedule_callback != nullptr) {
      // The safe point for it: still wholly on self (switch_hooks.h). Before
      // the new tasklet's stack is reserved, as Stackless calls it before a
      // transfer that may yet fail.
      auto call_sp = call_sp_;
      hooks::call_schedule_callback(self, next);
      call_sp_ = call_sp;
    }
  }
  if (!next->started_) {
    bool reserved = false;
    try {
      reserve_stack(next);
      reserved = true;
    } catch (...) {
      capture_current_exception();  // the Python error is raised outside the catch block
    }
    if (!reserved) {
      // Nothing switched: the caller asked for this very tasklet and gets the error.
      if (self->in_ring_) ring_.set_head(self);
      return PyErr_Format(PyExc_MemoryError, "cannot start a tasklet: %s", captured_exception_text());
    }
  }
  self->suspended_sp_ = call_sp_;  // for the GC while suspended
  call_sp_ = nullptr;
  self->pystate_.save(tstate_);
  enter(next);
  if (!next->started_) mark_started(next);
  check_leaving_stack(self);
  void* fake_stack = nullptr;
  sanitizer_start_switch(&fake_stack, next);
  FiberTransfer back = jump_context(std::exchange(next->context_, nullptr), next);
  sanitizer_finish_switch(fake_stack);
  after_switch(back.fctx);
  self->suspended_sp_ = nullptr;
  return resume_here(self);
}

PyObject* Scheduler::refuse_switch() {
  // stackless.switch_trap() is up: nothing switches, and the current tasklet
  // stays the running one, as before the switch point it is in (one on its way
  // into a channel's queue is taken out by the channel).
  Tasklet* self = current_;
  if (!self->blocked()) {
    if (!self->in_ring_) insert(self);
    Py_CLEAR(self->tempval_);  // a schedule(retval)'s, never to be returned
  }
  if (self->in_ring_) ring_.set_head(self);
  PyErr_SetString(PyExc_RuntimeError, "switch_trap");
  return nullptr;
}

PyObject* Scheduler::resume_here(Tasklet* self) {
  PyObject* value = resume_value(self);
  release_after_switch();  // after the value is taken: a finalizer may switch again
  if (self->pending_exc_ != nullptr && value != nullptr) {
    // An unstartable tasklet's error, passed to us (main, or the innermost
    // run()) by the report just made.
    Py_DECREF(value);
    value = resume_value(self);
  }
  return value;
}

void Scheduler::after_switch(FiberContext from) {
  Tasklet* left = std::exchange(switching_from_, nullptr);
  if (void* block = std::exchange(finished_block_, nullptr)) {
    // Off the finished tasklet's stack at last: the block goes back to the
    // pool. (Not judged by its flags: bind() may have reset them meanwhile.)
    StackPool::instance().release(block);
  } else if (left != nullptr) {
    left->context_ = from;
  }
}

void Scheduler::release_rest_after_switch() {
  // Taken out first: a finalizer that switches refills them.
  PyObject* longest = std::exchange(release_after_switch_[1], nullptr);
  PyObject* passed = std::exchange(release_after_switch_[2], nullptr);
  Py_XDECREF(longest);
  Py_XDECREF(passed);
  report_unstartable();
}

PyObject* Scheduler::resume_value(Tasklet* t) {
  if (t->pending_exc_ != nullptr) {
    PyObject* exc = t->pending_exc_;
    t->pending_exc_ = nullptr;
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
    Py_DECREF(exc);
    return nullptr;
  }
  PyObject* value = t->tempval_;
  t->tempval_ = nullptr;
  if (t->tempval_is_exc_) {
    t->tempval_is_exc_ = false;
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(value)), value);
    Py_DECREF(value);
    return nullptr;
  }
  if (value == nullptr) Py_RETURN_NONE;
  return value;
}

Scheduler::LongestSlice Scheduler::take_longest_slice() {
  LongestSlice taken = longest_slice_;
  longest_slice_ = {};
  return taken;
}

// ---------------------------------------------------------------- picking next

// Null with *deadlock set when nothing can run: no Python error means a true
// deadlock, an error (KeyboardInterrupt) ended the wait for other threads.
Tasklet* Scheduler::pick_next(bool* deadlock) {
  *deadlock = false;
  for (;;) {
    if (!loop_driven_ && parking_.timer_count() > 0 && parking_.next_deadline() <= now_ns()) {
      parking_.wake_due(now_ns());
    }
    if (soft_watchdog_due()) return wake_watchdog(*watchdogs_.timed(), WakeReason::kSoftTimeout);
    if (ring_.head() != nullptr) {
      // One that cannot get a stack is set aside (its error reaches main or
      // the log once the switch is complete): look again.
      if (ensure_stack(ring_.head())) return ring_.head();
      continue;
    }
    if (Watchdog* w = watchdogs_.innermost()) return wake_watchdog(*w, WakeReason::kRingEmpty);
    // A main tasklet that switch()ed away and waits for nothing acts as the
    // watchdog: Stackless revives it rather than report a deadlock.
    if (main_floating()) {
      insert(main_);
      ring_.set_head(main_);
      return main_;
    }
    if (!idle_wait()) break;
  }
  *deadlock = true;
  return nullptr;
}

bool Scheduler::main_floating() const {
  return main_ != current_ && !main_->in_ring_ && !main_->blocked() &&
         main_->wait_token_.load(std::memory_order_acquire) == 0;
}

// ---------------------------------------------------------------- switch points

PyObject* Scheduler::schedule(bool remove_current, PyObject* retval) {
  Tasklet* self = current_;
  Py_XINCREF(retval);
  Py_XSETREF(self->tempval_, retval);
  if (remove_current) {
    remove(self);
  } else if (ring_.head() == self) {
    ring_.set_head(self->next_);
  }
  bool deadlock = false;
  Tasklet* next = pick_next(&deadlock);
  if (next == self) return resume_here(self);
  if (deadlock) {
    insert(self);
    ring_.set_head(self);
    Py_CLEAR(self->tempval_);
    report_unstartable();  // logged: nothing else will run to report them
    if (PyErr_Occurred()) return nullptr;
    return PyErr_Format(PyExc_RuntimeError,
                        "Deadlock: the last runnable tasklet cannot be removed");
  }
  return switch_to(next);
}

PyObject* Scheduler::block_current() {
  Tasklet* self = current_;
  bool deadlock = false;
  Tasklet* next = pick_next(&deadlock);
  if (next == self) return resume_here(self);  // woken while we waited
  if (deadlock) {
    report_unstartable();  // logged: nothing else will run to report them
    if (PyErr_Occurred()) return nullptr;
    return PyErr_Format(PyExc_RuntimeError,
                        "Deadlock: the last runnable tasklet cannot be blocked.");
  }
  return switch_to(next);
}

void Scheduler::reinstate_current() {
  if (!current_->in_ring_) insert(current_);
  ring_.set_head(current_);
}

uint64_t Scheduler::prepare_park() {
  return parking_.begin_wait(current_);
}

PyObject* Scheduler::park(uint64_t token, int64_t deadline_ns, bool* timed_out) {
  Tasklet* self = current_;
  *timed_out = false;
  // Woken already (by this thread between prepare_park and now): nothing to wait for.
  if (self->wait_token_.load(std::memory_order_acquire) != token) return Py_NewRef(Py_None);
  if (deadline_ns != 0) {
    parking_.add_deadline(self, token, deadline_ns);
  }
  remove(self);
  PyObject* result = block_current();
  if (deadline_ns != 0) parking_.end_timed_wait();
  if (result == nullptr) {
    // Killed while parked, nothing can ever wake it (deadlock), or a signal
    // ended the wait.
    uint64_t expected = token;
    self->wait_token_.compare_exchange_strong(expected, 0);
    reinstate_current();
    return nullptr;
  }
  *timed_out = self->timed_out_;
  return result;
}

PyObject* Scheduler::run_tasklet(Tasklet* t, bool pause_current) {
  Tasklet* self = current_;
  if (t == self) Py_RETURN_NONE;
  if (!t->in_ring_) insert(t);
  if (pause_current) remove(self);
  ring_.set_head(t);
  return switch_to(t);
}

PyObject* Scheduler::throw_into(Tasklet* t, PyObject* exc, bool immediate) {
  if (t == current_) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
    Py_DECREF(exc);
    return nullptr;
  }
  Py_XSETREF(t->pending_exc_, exc);
  // A parked tasklet's wait ends here; its waker or timer will find it gone.
  t->wait_token_.exchange(0, std::memory_order_acq_rel);
  if (t->blocked()) {
    t->blocker_->release(t);
  } else {
    make_runnable(t);  // a tasklet of another thread: raised when its thread resumes it
  }
  if (!immediate || t->sched_ != this) Py_RETURN_NONE;
  move_before_head(t);  // right before current: current runs again after t
  ring_.set_head(t);
  return switch_to(t);
}

}  // namespace shard::engine
