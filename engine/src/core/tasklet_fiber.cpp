// A tasklet's fiber: where its stack comes from, what runs on it, and how it
// ends and hands over to the next tasklet.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "core/clock.h"
#include "core/cxx_boundary.h"
#include "core/fiber_switch.h"
#include "core/park_at_exit.h"
#include "core/python_errors.h"
#include "core/switch_hooks.h"
#include "core/switch_checks.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/stack_pool.h"
#include "shard/engine/tasklet_exit.h"

namespace shard::engine {
namespace {

// C stack a tasklet may use per level of recursion: what CPython's main thread
// offers at its default limit (8 MiB / 1000). Measured worst so far on 3.11.2:
// ~5 KiB per level through sorted(key=f) where f returns lists.
constexpr std::size_t kCStackBytesPerLevel = 8192;
// Kept free below the deepest level: the RecursionError itself, the handlers
// CPython allows past the limit, signal handlers, libc.
constexpr std::size_t kCStackReserve = 128u << 10;

int tasklet_recursion_cap() {
  static const int cap = std::max<int>(
      1, static_cast<int>((StackPool::instance().stack_bytes() - kCStackReserve) / kCStackBytesPerLevel));
  return cap;
}

// Why a main tasklet that nothing can wake is stuck (Stackless's texts for a
// channel; a park has no Stackless counterpart).
const char* main_deadlock_message(const Tasklet* main) {
  if (main->blocked()) return main->blocker_->deadlock_message(main);
  return "Deadlock: the main tasklet is waiting and nothing can wake it";
}

// A fresh fiber's first step; the first jump to it passes its tasklet.
void tasklet_entry(FiberTransfer from) noexcept {
  Tasklet* tasklet = static_cast<Tasklet*>(from.data);
  Scheduler* sched = tasklet->sched_;  // a started tasklet never changes thread
  sanitizer_finish_switch(nullptr);
  sched->after_switch(from.fctx);
  // Not noexcept below: a tasklet of a thread other than the finalizing one
  // may take the interpreter lock at exit (core/park_at_exit.h).
  run_or_park_at_exit([&] { sched->run_body(tasklet); });
}
}  // namespace

[[noreturn]] void stack_overflowed(const Tasklet* t) noexcept {
  // Memory is corrupt: no Python, no allocation, one write(2) and abort. The
  // name is printed only when it can be read without running Python.
  const char* name = "(no name)";
  const char* quote = "";
  if (t->name_ != nullptr && PyUnicode_CheckExact(t->name_) && PyUnicode_IS_COMPACT_ASCII(t->name_)) {
    name = static_cast<const char*>(PyUnicode_DATA(t->name_));
    quote = "'";
  } else if (t->name_ != nullptr) {
    name = "(its name is not a plain ASCII str)";
  }
  StackPool::Layout layout = StackPool::instance().layout(t->stack_block_);
  const char* low = layout.stack_top - layout.stack_size;
  char message[1024];
  int length = std::snprintf(
      message, sizeof message,
      "shard: fatal: C stack overflow in tasklet %s%.200s%s (<%.100s object at %p>): the canary word at the low end "
      "of its stack (%p, stack %p..%p, %zu KiB) reads %#llx instead of %#llx. The memory below that stack, "
      "another tasklet's block, may be corrupt; aborting. A C extension recursed or allocated past "
      "SHARD_TASKLET_STACK_KB; a build with -DSHARD_STACK_GUARD_PAGES=ON stops at the first write past the "
      "end.\n",
      quote, name, quote, Py_TYPE(t)->tp_name, static_cast<const void*>(t), static_cast<const void*>(low),
      static_cast<const void*>(low), static_cast<const void*>(layout.stack_top), layout.stack_size >> 10,
      static_cast<unsigned long long>(*reinterpret_cast<const std::uint64_t*>(low)),
      static_cast<unsigned long long>(StackPool::kStackCanary));
  if (length > 0) {
    [[maybe_unused]] ssize_t written = write(STDERR_FILENO, message, std::min<std::size_t>(length, sizeof message - 1));
  }
  std::abort();
}

void Scheduler::reserve_stack(Tasklet* t) {
  if (t->stack_block_ != nullptr) return;
  StackPool& pool = StackPool::instance();
  void* block = pool.acquire();
  StackPool::Layout layout = pool.layout(block);
  t->stack_block_ = block;
  t->context_ = make_context(layout.stack_top, layout.stack_size, tasklet_entry);
  // The root data-stack chunk sits right above the C stack top.
  t->root_chunk_ = reinterpret_cast<_PyStackChunk*>(layout.stack_top);
  t->root_chunk_size_ = layout.chunk_size;
}

void Scheduler::mark_started(Tasklet* t) {
  t->started_ = true;
  link_live(t);
}

bool Scheduler::reserve_or_set_aside(Tasklet* t) noexcept {
  try {
    reserve_stack(t);
    return true;
  } catch (...) {
    capture_current_exception();
  }
  set_aside_unstartable(t, captured_exception_text());
  return false;
}

void Scheduler::set_aside_unstartable(Tasklet* t, const char* why) noexcept {
  // It leaves the ring as if it had died at once, so the tasklets that do have
  // stacks go on. Its error is built and its callable dropped later, by
  // report_unstartable(): here we are inside a switch, where no Python code
  // may run (a finalizer that switched would strand this fiber).
  std::snprintf(unstartable_why_, sizeof unstartable_why_, "%s", why);
  Tasklet* owned = ring_.unlink(t);  // the ring's reference...
  t->in_ring_ = false;
  t->unstartable_ = true;
  unstartable_.push_back(owned);
  Py_DECREF(owned);  // ...now the list's: never the last one
  if (error_sink_) return;
  // Without a game loop the error goes to main or the innermost run(): it
  // runs next and reports it. A blocked receiver is released without running
  // Python: what it was sending is dropped after the switch.
  Tasklet* receiver = error_receiver();
  if (receiver->blocked() && release_after_switch_[2] == nullptr) {
    release_after_switch_[2] = std::exchange(receiver->tempval_, nullptr);
    receiver->tempval_is_exc_ = false;
    receiver->blocker_->release(receiver);
  }
  if (!receiver->blocked()) {
    move_before_head(receiver);
    ring_.set_head(receiver);
  }
}

void Scheduler::report_unstartable() noexcept {
  if (unstartable_.empty()) return;
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);  // the resumed tasklet's own error waits
  while (!unstartable_.empty()) {
    // Off the list before any Python runs: a finalizer below may switch, and
    // the next tasklet resumed reports the rest.
    Tasklet* t = unstartable_.unlink(unstartable_.head());
    PyObject* message = PyUnicode_FromFormat("cannot start a tasklet: %s", unstartable_why_);
    PyObject* dropped[] = {std::exchange(t->func_, nullptr), std::exchange(t->args_, nullptr),
                           std::exchange(t->kwargs_, nullptr), std::exchange(t->init_context_, nullptr)};
    t->unstartable_ = false;  // dead by itself now (no arguments)
    PyObject* error = message != nullptr ? PyObject_CallOneArg(PyExc_MemoryError, message) : nullptr;
    Py_XDECREF(message);
    if (error == nullptr) error = take_exception();
    for (PyObject* held : dropped) Py_XDECREF(held);
    if (error_sink_) {
      call_error_sink(t, error);
      Py_XDECREF(error);
    } else {
      pass_exception_to_main(error);
    }
    Py_DECREF(t);
  }
  PyErr_Restore(type, value, traceback);
}

// ---------------------------------------------------------------- the tasklet body

void Scheduler::run_body(Tasklet* self) {
  _PyCFrame base{};
  base.current_frame = nullptr;
  base.previous = nullptr;
  self->pystate_.init_fresh(&base, self->root_chunk_, self->root_chunk_size_, &self->exc_root_,
                            self->init_context_, tasklet_recursion_cap());
  self->init_context_ = nullptr;
  self->pystate_.restore(tstate_);
  release_after_switch();  // the switch into this fiber is complete

  PyObject* result = nullptr;
  if (self->pending_exc_ != nullptr) {
    result = resume_value(self);  // killed or thrown at before it ever ran
    Py_CLEAR(self->func_);
    Py_CLEAR(self->args_);
    Py_CLEAR(self->kwargs_);
  } else {
    PyObject* func = self->func_;
    PyObject* args = self->args_;
    PyObject* kwargs = self->kwargs_;
    self->func_ = self->args_ = self->kwargs_ = nullptr;
    result = PyObject_Call(func, args, kwargs);
    Py_DECREF(func);
    Py_DECREF(args);
    Py_XDECREF(kwargs);
  }
  PyObject* error = nullptr;
  if (result == nullptr) {
    PyObject* value = take_exception();
    if (value != nullptr && !PyObject_TypeCheck(value, reinterpret_cast<PyTypeObject*>(TaskletExitError))) {
      error = value;
    } else {
      Py_XDECREF(value);
    }
  }
  Py_XDECREF(result);
  if (error != nullptr && hooks::error_handler != nullptr &&
      !PyObject_TypeCheck(error, reinterpret_cast<PyTypeObject*>(PyExc_SystemExit))) {
    // stackless.set_error_handler(): the handler gets it, in this tasklet
    // while it is still whole (it may switch); if it fails, its own error goes
    // to main, as in Stackless.
    hooks::call_error_handler(&error);
  }
  if (error != nullptr && error_sink_ && !PyObject_TypeCheck(error, reinterpret_cast<PyTypeObject*>(PyExc_SystemExit)) &&
      !PyObject_TypeCheck(error, reinterpret_cast<PyTypeObject*>(PyExc_KeyboardInterrupt))) {
    // Logged while the tasklet is still whole (alive, in the ring): the sink
    // runs Python code that may switch, and only a whole tasklet comes back.
    call_error_sink(self, error);
    Py_DECREF(error);
    error = nullptr;
  }
  Py_CLEAR(self->exc_root_.exc_value);
  Py_CLEAR(self->tempval_);

  // This fiber ends: tstate must hold the next tasklet's state before the block
  // (with this tasklet's data stack) goes back to the pool.
  if (self->in_ring_) remove(self);
  self->finished_ = true;
  unlink_live(self);
  if (error != nullptr) pass_exception_to_main(error);
  bool deadlock = false;
  Tasklet* next = pick_next(&deadlock);
  if (deadlock) {
    // Only a blocked main tasklet is left: it gets the deadlock error (or the
    // KeyboardInterrupt that ended the wait for other threads), worded as
    // Stackless words it.
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, main_deadlock_message(main_));
    pass_exception_to_main(take_exception());
    next = pick_next(&deadlock);
  }
  if (hooks::schedule_callback != nullptr) [[unlikely]] {
    // At the safe point of a finishing tasklet: its state is still in tstate.
    hooks::call_schedule_callback(self, next);
  }
  self->pystate_.save(tstate_);
  self->pystate_.clear_context();
  enter(next);
  if (!next->started_) mark_started(next);
  check_leaving_stack(self);
  finished_block_ = std::exchange(self->stack_block_, nullptr);
  FiberContext to = std::exchange(next->context_, nullptr);
  // No way back: ASan frees this fiber's fake stack, so nothing between here
  // and the jump may touch this frame's address-taken locals.
  sanitizer_start_switch(nullptr, next);
  jump_context(to, next);
  std::abort();  // a finished fiber is never resumed
}

void Scheduler::call_error_sink(Tasklet* t, PyObject* error) noexcept {
  // The sink is C++ (the game loop's logging, which builds strings): what it
  // throws stops here and is reported as unraisable, outside the catch block.
  bool threw = false;
  try {
    error_sink_(t, error);
  } catch (...) {
    capture_current_exception();
    threw = true;
  }
  if (threw) report_captured_exception();
}

Tasklet* Scheduler::error_receiver() {
  // "Uncaught exceptions are raised out of the stackless.run() call": the
  // innermost run() gets it, else the main tasklet.
  return watchdogs_.empty() ? main_ : watchdogs_.innermost()->tasklet;
}

void Scheduler::pass_exception_to_main(PyObject* exc) {
  Tasklet* main = error_receiver();
  Py_XSETREF(main->pending_exc_, exc);
  if (main->blocked()) main->blocker_->release(main);
  move_before_head(main);
  ring_.set_head(main);
}

void Scheduler::link_live(Tasklet* t) {
  ++live_count_;
  t->live_prev_ = nullptr;
  t->live_next_ = live_head_;
  if (live_head_ != nullptr) live_head_->live_prev_ = t;
  live_head_ = t;
}

void Scheduler::unlink_live(Tasklet* t) {
  --live_count_;
  if (t->live_prev_ != nullptr) t->live_prev_->live_next_ = t->live_next_;
  else if (live_head_ == t) live_head_ = t->live_next_;
  if (t->live_next_ != nullptr) t->live_next_->live_prev_ = t->live_prev_;
  t->live_next_ = t->live_prev_ = nullptr;
}

void Scheduler::kill_all_started() {
  std::vector<Tasklet*> victims;
  for (Tasklet* t = live_head_; t != nullptr; t = t->live_next_) {
    if (t != current_) {
      Py_INCREF(t);
      victims.push_back(t);
    }
  }
  for (Tasklet* t : victims) {
    // A tasklet that blocks again in its finally block gets a few more tries.
    for (int attempt = 0; attempt < 3 && t->started_ && !t->finished_; ++attempt) {
      PyObject* exc = PyObject_CallNoArgs(TaskletExitError);
      PyObject* result = exc != nullptr ? throw_into(t, exc, true) : nullptr;
      if (result == nullptr) PyErr_WriteUnraisable(reinterpret_cast<PyObject*>(t));
      Py_XDECREF(result);
    }
    Py_DECREF(t);
  }
}

}  // namespace shard::engine
