#include "shard/engine/scheduler.h"

#include <algorithm>
#include <chrono>
#include <unordered_map>

#include "frame_internals.h"
#include "shard/engine/channel.h"
#include "shard/engine/preemption.h"
#include "shard/engine/stack_pool.h"
#include "shard/engine/stackless_errors.h"

namespace shard::engine {
namespace {

thread_local Scheduler* tls_scheduler = nullptr;

// Live schedulers by thread id; guarded by the GIL.
std::unordered_map<unsigned long, Scheduler*>& registry() {
  static auto* map = new std::unordered_map<unsigned long, Scheduler*>();
  return *map;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

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

// Gives a finished fiber's block back to the pool; boost calls it on the stack of
// the fiber that runs next.
struct PooledStackReturn {
  boost::context::stack_context allocate() { std::abort(); }  // blocks come preallocated
  void deallocate(boost::context::stack_context& sctx) noexcept {
    StackPool& pool = StackPool::instance();
    pool.release(pool.block_of(static_cast<char*>(sctx.sp), sctx.size));
  }
};

struct FiberEntry {
  Tasklet* tasklet;
  boost::context::fiber operator()(boost::context::fiber&& from) {
    Scheduler* sched = tasklet->sched_;  // a started tasklet never changes thread
    sched->after_switch(std::move(from));
    return sched->run_body(tasklet);
  }
};

void scheduler_capsule_destructor(PyObject* capsule);

}  // namespace

void scheduler_thread_ended(PyObject* capsule) {
  auto* sched = static_cast<Scheduler*>(PyCapsule_GetPointer(capsule, "shard.scheduler"));
  if (sched != nullptr) sched->thread_ended();
}

namespace {
void scheduler_capsule_destructor(PyObject* capsule) { scheduler_thread_ended(capsule); }
}  // namespace

// ---------------------------------------------------------------- lifecycle

Scheduler::Scheduler(PyThreadState* tstate)
    : tstate_(tstate), thread_id_(PyThread_get_thread_ident()) {}

Scheduler* Scheduler::current() {
  if (tls_scheduler != nullptr) return tls_scheduler;
  PyThreadState* tstate = PyThreadState_Get();
  Tasklet* main = new_tasklet();
  if (main == nullptr) return nullptr;
  // Tied to the thread state's dict, which CPython clears (GIL held) when the
  // thread ends: the hook to detach this thread's tasklets.
  PyObject* dict = PyThreadState_GetDict();
  auto* sched = new Scheduler(tstate);
  PyObject* capsule = PyCapsule_New(sched, "shard.scheduler", scheduler_capsule_destructor);
  if (dict == nullptr || capsule == nullptr ||
      PyDict_SetItemString(dict, "shard.scheduler", capsule) < 0) {
    Py_XDECREF(capsule);
    Py_DECREF(main);
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "cannot attach a scheduler to this thread");
    return nullptr;
  }
  Py_DECREF(capsule);
  main->is_main_ = true;
  main->started_ = true;
  main->sched_ = sched;
  main->thread_id_ = sched->thread_id_;
  main->pystate_.init_running(INT_MAX);
  sched->main_ = main;  // the scheduler's own reference
  Py_INCREF(main);
  sched->current_ = main;
  sched->insert(main);
  registry()[sched->thread_id_] = sched;
  tls_scheduler = sched;
  return sched;
}

Scheduler* Scheduler::for_thread(unsigned long thread_id) {
  auto it = registry().find(thread_id);
  return it == registry().end() ? nullptr : it->second;
}

std::vector<unsigned long> Scheduler::thread_ids() {
  std::vector<unsigned long> ids;
  for (auto& [id, sched] : registry()) ids.push_back(id);
  return ids;
}

void Scheduler::thread_ended() {
  // As in Stackless, tasklets with C state are killed while the thread can
  // still run them (this is called from the ending thread itself, with its
  // thread state intact); any that survive can never resume. Tasklets keep
  // their objects and report thread_id -1; the Scheduler object stays
  // allocated because they point at it.
  // At interpreter shutdown the atexit hook has already done this while the
  // modules were still there; switching into tasklets now would find them gone.
  if (PyThread_get_thread_ident() == thread_id_ && current_ == main_ && !_Py_IsFinalizing()) {
    kill_all_started();
  }
  alive_ = false;
  registry().erase(thread_id_);
  if (tls_scheduler == this) tls_scheduler = nullptr;
  std::vector<Tasklet*> incoming;
  {
    std::lock_guard lock(incoming_mutex_);
    incoming.swap(incoming_);
  }
  for (Tasklet* t : incoming) Py_DECREF(t);
  while (head_ != nullptr) remove(head_);
  for (Watchdog& w : watchdogs_) Py_CLEAR(w.interrupted);
  watchdogs_.clear();
  Py_CLEAR(current_);
  Py_CLEAR(main_);
}

// ---------------------------------------------------------------- the ring

void Scheduler::insert(Tasklet* t) {
  Py_INCREF(t);
  t->in_ring_ = true;
  if (head_ == nullptr) {
    t->next_ = t->prev_ = t;
    head_ = t;
  } else {
    t->next_ = head_;
    t->prev_ = head_->prev_;
    head_->prev_->next_ = t;
    head_->prev_ = t;
  }
  ++runcount_;
}

void Scheduler::remove(Tasklet* t) {
  if (t->next_ == t) {
    head_ = nullptr;
  } else {
    if (head_ == t) head_ = t->next_;
    t->prev_->next_ = t->next_;
    t->next_->prev_ = t->prev_;
  }
  t->next_ = t->prev_ = nullptr;
  t->in_ring_ = false;
  --runcount_;
  Py_DECREF(t);
}

void Scheduler::insert_after_current(Tasklet* t) {
  Tasklet* head = head_;
  head_ = current_->in_ring_ ? current_->next_ : head_;
  insert(t);
  head_ = head != nullptr ? head : t;
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

boost::context::fiber& Scheduler::fiber_of(Tasklet* t) {
  if (!t->started_) {
    StackPool& pool = StackPool::instance();
    StackPool::Layout block = pool.layout(pool.acquire());
    boost::context::stack_context sctx;
    sctx.size = block.stack_size;
    sctx.sp = block.stack_top;
    t->fiber_ = boost::context::fiber(
        std::allocator_arg, boost::context::preallocated(block.stack_top, block.stack_size, sctx),
        PooledStackReturn{}, FiberEntry{t});
    t->started_ = true;
    link_live(t);
    // The root data-stack chunk sits right above the C stack top.
    t->root_chunk_ = reinterpret_cast<_PyStackChunk*>(block.stack_top);
    t->root_chunk_size_ = block.chunk_size;
  }
  return t->fiber_;
}

void Scheduler::enter(Tasklet* next) {
  // Hand `current_` over to next; the leaving tasklet's reference is dropped on
  // the other side.
  release_after_switch_ = reinterpret_cast<PyObject*>(current_);
  switching_from_ = current_;
  Py_INCREF(next);
  current_ = next;
  head_ = next;
  ++switches_;
  if (timed_) {
    slice_start_ns_ = now_ns();
    Preemption::note_switch(slice_start_ns_);
  }
  if (next->started_) next->pystate_.restore(tstate_);
}

PyObject* Scheduler::switch_to(Tasklet* next) {
  Tasklet* self = current_;
  // Let the GC see the caller's evaluation stack while it is suspended.
  _PyInterpreterFrame* frame = tstate_->cframe->current_frame;
  int saved_stacktop = shard_frame_expose_stack(frame, call_sp_);
  call_sp_ = nullptr;
  self->pystate_.save(tstate_);
  enter(next);
  boost::context::fiber from;
  try {
    from = std::move(fiber_of(next)).resume();
  } catch (const std::exception& e) {
    // No stack could be had: nothing switched; undo.
    current_ = self;
    head_ = self->in_ring_ ? self : head_;
    release_after_switch_ = nullptr;
    switching_from_ = nullptr;
    Py_DECREF(next);
    self->pystate_.restore(tstate_);
    shard_frame_hide_stack(frame, saved_stacktop);
    return PyErr_Format(PyExc_MemoryError, "cannot start a tasklet: %s", e.what());
  }
  after_switch(std::move(from));
  shard_frame_hide_stack(frame, saved_stacktop);
  return resume_value(self);
}

void Scheduler::after_switch(boost::context::fiber&& from) {
  if (switching_from_ != nullptr && !switching_from_->finished_) {
    switching_from_->fiber_ = std::move(from);
  }
  switching_from_ = nullptr;
  if (PyObject* leaving = release_after_switch_) {
    release_after_switch_ = nullptr;
    Py_DECREF(leaving);
  }
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

// ---------------------------------------------------------------- picking next

Scheduler::Watchdog* Scheduler::timed_watchdog() {
  for (Watchdog& w : watchdogs_) {
    if (w.timeout_ns != 0 || w.deadline_ns != 0) return &w;
  }
  return nullptr;
}

bool Scheduler::soft_watchdog_due() {
  if (!timed_) return false;
  const Watchdog* w = timed_watchdog();
  int64_t now = now_ns();
  if (w->deadline_ns != 0 && now >= w->deadline_ns) return true;
  return w->soft && w->timeout_ns != 0 && now - slice_start_ns_ >= w->timeout_ns;
}

Tasklet* Scheduler::wake_watchdog(Watchdog& w, WakeReason reason) {
  w.reason = reason;
  move_before_head(w.tasklet);
  head_ = w.tasklet;
  return w.tasklet;
}

// Null with *deadlock set when nothing can run: no Python error means a true
// deadlock, an error (KeyboardInterrupt) ended the wait for other threads.
Tasklet* Scheduler::pick_next(bool* deadlock) {
  *deadlock = false;
  if (has_incoming_.load(std::memory_order_acquire)) drain_incoming();
  if (soft_watchdog_due()) return wake_watchdog(*timed_watchdog(), WakeReason::kSoftTimeout);
  if (head_ != nullptr) return head_;
  if (!watchdogs_.empty()) return wake_watchdog(watchdogs_.back(), WakeReason::kRingEmpty);
  if (wait_for_other_threads()) return head_;
  *deadlock = true;
  return nullptr;
}

bool Scheduler::other_threads_exist() const {
  PyInterpreterState* interp = tstate_->interp;
  for (PyThreadState* ts = PyInterpreterState_ThreadHead(interp); ts != nullptr;
       ts = PyThreadState_Next(ts)) {
    if (ts != tstate_) return true;
  }
  return false;
}

void Scheduler::drain_incoming() {
  std::vector<Tasklet*> woken;
  {
    std::lock_guard lock(incoming_mutex_);
    woken.swap(incoming_);
    has_incoming_.store(false, std::memory_order_relaxed);
  }
  for (Tasklet* t : woken) {
    if (!t->in_ring_ && !t->blocked() && !t->finished_) insert(t);
    Py_DECREF(t);
  }
}

bool Scheduler::wait_for_other_threads() {
  // Nothing runnable here: another thread may still make one of ours runnable
  // (a channel partner). Wait for that without the GIL while other threads exist.
  while (head_ == nullptr) {
    if (has_incoming_.load(std::memory_order_acquire)) {
      drain_incoming();
      continue;
    }
    if (!other_threads_exist()) return false;
    Py_BEGIN_ALLOW_THREADS
    std::unique_lock lock(incoming_mutex_);
    incoming_cv_.wait_for(lock, std::chrono::milliseconds(50), [this] { return !incoming_.empty(); });
    Py_END_ALLOW_THREADS
    // Ctrl-C (or another signal handler's exception) ends the wait.
    if (PyErr_CheckSignals() < 0) return false;
  }
  return true;
}

void Scheduler::push_to_incoming(Tasklet* t) {
  Py_INCREF(t);
  {
    std::lock_guard lock(incoming_mutex_);
    incoming_.push_back(t);
    has_incoming_.store(true, std::memory_order_release);
  }
  incoming_cv_.notify_one();
}

void Scheduler::make_runnable(Tasklet* t) {
  Scheduler* owner = t->sched_;
  if (owner == nullptr || !owner->alive_) return;
  if (owner == tls_scheduler) {
    if (!t->in_ring_) owner->insert(t);
  } else {
    owner->push_to_incoming(t);
  }
}

// ---------------------------------------------------------------- switch points

PyObject* Scheduler::schedule(bool remove_current, PyObject* retval) {
  Tasklet* self = current_;
  Py_XINCREF(retval);
  Py_XSETREF(self->tempval_, retval);
  if (remove_current) {
    remove(self);
  } else if (head_ == self) {
    head_ = self->next_;
  }
  bool deadlock = false;
  Tasklet* next = pick_next(&deadlock);
  if (next == self) return resume_value(self);
  if (deadlock) {
    insert(self);
    head_ = self;
    Py_CLEAR(self->tempval_);
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
  if (next == self) return resume_value(self);  // woken while we waited
  if (deadlock) {
    if (PyErr_Occurred()) return nullptr;
    return PyErr_Format(PyExc_RuntimeError,
                        "Deadlock: the last runnable tasklet cannot be blocked");
  }
  return switch_to(next);
}

void Scheduler::reinstate_current() {
  if (!current_->in_ring_) insert(current_);
  head_ = current_;
}

PyObject* Scheduler::run_tasklet(Tasklet* t, bool pause_current) {
  Tasklet* self = current_;
  if (t == self) Py_RETURN_NONE;
  if (!t->in_ring_) insert(t);
  if (pause_current) remove(self);
  head_ = t;
  return switch_to(t);
}

PyObject* Scheduler::throw_into(Tasklet* t, PyObject* exc, bool immediate) {
  if (t == current_) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
    Py_DECREF(exc);
    return nullptr;
  }
  Py_XSETREF(t->pending_exc_, exc);
  if (t->blocked()) {
    Tasklet* owned = channel_unblock(t);
    Py_CLEAR(t->tempval_);
    t->tempval_is_exc_ = false;
    if (t->sched_ == this) {
      if (!t->in_ring_) insert(t);
    } else {
      make_runnable(t);
    }
    Py_DECREF(owned);
  } else if (t->sched_ != this) {
    make_runnable(t);
  } else if (!t->in_ring_) {
    insert(t);
  }
  if (!immediate || t->sched_ != this) Py_RETURN_NONE;
  move_before_head(t);  // right before current: current runs again after t
  head_ = t;
  return switch_to(t);
}

// ---------------------------------------------------------------- the tasklet body

boost::context::fiber Scheduler::run_body(Tasklet* self) {
  _PyCFrame base{};
  base.current_frame = nullptr;
  base.previous = nullptr;
  self->pystate_.init_fresh(&base, self->root_chunk_, self->root_chunk_size_, &self->exc_root_,
                            self->init_context_, tasklet_recursion_cap());
  self->init_context_ = nullptr;
  self->pystate_.restore(tstate_);

  PyObject* result = nullptr;
  if (self->pending_exc_ != nullptr) {
    result = resume_value(self);  // killed or thrown at before it ever ran
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
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != nullptr) PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (value != nullptr && !PyObject_TypeCheck(value, reinterpret_cast<PyTypeObject*>(TaskletExitError))) {
      error = value;
    } else {
      Py_XDECREF(value);
    }
  }
  Py_XDECREF(result);
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
    // KeyboardInterrupt that ended the wait for other threads).
    if (!PyErr_Occurred()) {
      PyErr_SetString(PyExc_RuntimeError, "Deadlock: the main tasklet is blocked and nothing can wake it");
    }
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    pass_exception_to_main(value);
    next = pick_next(&deadlock);
  }
  self->pystate_.save(tstate_);
  self->pystate_.clear_context();
  enter(next);
  boost::context::fiber& target = fiber_of(next);
  return std::move(target);
}

void Scheduler::pass_exception_to_main(PyObject* exc) {
  // "Uncaught exceptions are raised out of the stackless.run() call": the
  // innermost run() gets it, else the main tasklet.
  Tasklet* main = watchdogs_.empty() ? main_ : watchdogs_.back().tasklet;
  Py_XSETREF(main->pending_exc_, exc);
  if (main->blocked()) {
    Tasklet* owned = channel_unblock(main);
    Py_CLEAR(main->tempval_);
    main->tempval_is_exc_ = false;
    insert(main);
    Py_DECREF(owned);
  }
  move_before_head(main);
  head_ = main;
}

void Scheduler::link_live(Tasklet* t) {
  t->live_prev_ = nullptr;
  t->live_next_ = live_head_;
  if (live_head_ != nullptr) live_head_->live_prev_ = t;
  live_head_ = t;
}

void Scheduler::unlink_live(Tasklet* t) {
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

// ---------------------------------------------------------------- stackless.run()

Scheduler::Watchdog* Scheduler::find_watchdog(Tasklet* t) {
  for (auto it = watchdogs_.rbegin(); it != watchdogs_.rend(); ++it) {
    if (it->tasklet == t) return &*it;
  }
  return nullptr;
}

PyObject* Scheduler::run_watchdog(const RunOptions& options) {
  Tasklet* self = current_;
  // Only the outermost run() with a timeout sets the pace (Stackless semantics).
  bool timed = std::none_of(watchdogs_.begin(), watchdogs_.end(),
                            [](const Watchdog& w) { return w.timeout_ns != 0 || w.deadline_ns != 0; });
  Watchdog w{self, 0, 0, options.soft};
  if (timed) {
    w.timeout_ns = options.timeout_us * 1000;
    w.deadline_ns = options.totaltimeout_us > 0 ? now_ns() + options.totaltimeout_us * 1000 : 0;
  }
  timed = w.timeout_ns != 0 || w.deadline_ns != 0;
  watchdogs_.push_back(w);
  bool was_timed = timed_;
  if (timed) {
    timed_ = true;
    slice_start_ns_ = now_ns();
  }
  PreemptionScope preemption(this, timed && !options.soft, w.timeout_ns, w.deadline_ns);
  PyObject* result = nullptr;
  for (;;) {
    if (self->in_ring_) remove(self);
    if (has_incoming_.load(std::memory_order_acquire)) drain_incoming();
    // threadblock: with nothing runnable here, wait for other threads to make
    // one of ours runnable instead of returning.
    if (head_ == nullptr && options.threadblock && !wait_for_other_threads() && PyErr_Occurred()) {
      insert(self);
      head_ = self;
      break;
    }
    if (head_ == nullptr) {
      insert(self);
      head_ = self;
      result = Py_NewRef(Py_None);
      break;
    }
    Py_INCREF(self);
    result = switch_to(head_);
    Py_DECREF(self);
    Watchdog* mine = find_watchdog(self);
    if (result == nullptr) break;
    if (mine->reason == WakeReason::kRingEmpty && options.threadblock) mine->reason = WakeReason::kNone;
    if (mine->reason != WakeReason::kNone) break;
    Py_DECREF(result);
  }
  // Leave the watchdog stack: ours, and any inner ones left by tasklets that died.
  Tasklet* interrupted = nullptr;
  while (!watchdogs_.empty()) {
    Watchdog top = watchdogs_.back();
    watchdogs_.pop_back();
    if (top.tasklet == self) {
      interrupted = top.interrupted;
      break;
    }
    Py_XDECREF(top.interrupted);
  }
  timed_ = was_timed;
  if (!self->in_ring_) {
    insert(self);
  }
  head_ = self;
  if (result != nullptr && interrupted != nullptr) {
    Py_DECREF(result);
    return reinterpret_cast<PyObject*>(interrupted);
  }
  Py_XDECREF(interrupted);
  return result;
}

bool Scheduler::preemption_due(int64_t now) {
  const Watchdog* w = timed_ ? timed_watchdog() : nullptr;
  if (w == nullptr || w->soft || current_ == w->tasklet || current_->atomic_) return false;
  if (w->deadline_ns != 0 && now >= w->deadline_ns) return true;
  return w->timeout_ns != 0 && now - slice_start_ns_ >= w->timeout_ns;
}

PyObject* Scheduler::preempt() {
  // At a safe point in the running tasklet: it is taken out of the ring and
  // handed to the watchdog, which returns it from run().
  if (!preemption_due(now_ns())) Py_RETURN_NONE;
  Tasklet* victim = current_;
  Watchdog& w = *timed_watchdog();
  Py_INCREF(victim);
  Py_XSETREF(w.interrupted, victim);
  remove(victim);
  Tasklet* watchdog = wake_watchdog(w, WakeReason::kInterrupted);
  return switch_to(watchdog);
}

}  // namespace shard::engine
