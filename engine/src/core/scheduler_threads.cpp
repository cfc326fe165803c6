// Schedulers and threads: one scheduler per thread, created on first use and
// detached when the thread ends; handing tasklets between threads.
#include <algorithm>
#include <unordered_map>

#include "core/clock.h"
#include "core/cxx_boundary.h"
#include "core/switch_hooks.h"
#include "shard/engine/scheduler.h"

namespace shard::engine {
namespace {

// Live schedulers by thread id; guarded by the GIL.
std::unordered_map<unsigned long, Scheduler*>& registry() {
  static auto* map = new std::unordered_map<unsigned long, Scheduler*>();
  return *map;
}

}  // namespace

// The destructor of the capsule that ties a scheduler to its thread state.
void scheduler_thread_ended(PyObject* capsule) {
  auto* sched = static_cast<Scheduler*>(PyCapsule_GetPointer(capsule, "shard.scheduler"));
  if (sched != nullptr) sched->thread_ended();
}

// ---------------------------------------------------------------- lifecycle

Scheduler::Scheduler(PyThreadState* tstate)
    : tstate_(tstate), thread_id_(PyThread_get_thread_ident()) {
  ++allocated_;
}

Scheduler::~Scheduler() { --allocated_; }

void Scheduler::release() {
  if (--holders_ == 0) delete this;
}

Scheduler* Scheduler::create_for_this_thread() {
  PyThreadState* tstate = PyThreadState_Get();
  // Tied to the thread state's dict, which CPython clears (GIL held) when the
  // thread ends: the hook to detach this thread's tasklets.
  PyObject* dict = PyThreadState_GetDict();
  if (dict == nullptr) {
    PyErr_SetString(PyExc_RuntimeError, "cannot attach a scheduler to this thread: it has no thread state dict");
    return nullptr;
  }
  Tasklet* main = new_tasklet();
  if (main == nullptr) return nullptr;
  auto* sched = new Scheduler(tstate);  // counted: release() frees it
  // The capsule ends the thread's scheduler only once it is in the dict: one
  // dropped on the way must just free the scheduler.
  PyObject* capsule = PyCapsule_New(sched, "shard.scheduler", nullptr);
  if (capsule == nullptr || PyDict_SetItemString(dict, "shard.scheduler", capsule) < 0) {
    Py_XDECREF(capsule);
    Py_DECREF(main);
    sched->release();
    return nullptr;
  }
  PyCapsule_SetDestructor(capsule, guarded<scheduler_thread_ended>);
  Py_DECREF(capsule);
  main->is_main_ = true;
  main->started_ = true;
  main->sched_ = sched;
  sched->retain();
  main->thread_id_ = sched->thread_id_;
  main->pystate_.init_running(INT_MAX);
  sched->main_ = main;  // the scheduler's own reference
  Py_INCREF(main);
  sched->current_ = main;
  sched->insert(main);
  registry()[sched->thread_id_] = sched;
  tls_current_ = sched;
  // Stackless reports a main tasklet coming into being as a switch from None.
  if (hooks::schedule_callback != nullptr) hooks::call_schedule_callback(nullptr, main);
  return sched;
}

std::size_t Scheduler::started_tasklets_of_all_threads() {
  std::size_t started = 0;
  for (const auto& entry : registry()) started += entry.second->tasklets_alive();
  return started;
}

bool Scheduler::append_started_tasklets(PyObject* list) {
  for (const auto& entry : registry()) {
    for (Tasklet* t = entry.second->live_head_; t != nullptr; t = t->live_next_) {
      if (PyList_Append(list, as_object(t)) < 0) return false;
    }
  }
  return true;
}

namespace {
constexpr const char* kPassiveKey = "shard.passive_thread";
}  // namespace

bool Scheduler::mark_passive_thread() {
  PyObject* dict = PyThreadState_GetDict();
  return dict != nullptr && PyDict_SetItemString(dict, kPassiveKey, Py_True) == 0;
}

bool Scheduler::is_passive_thread(PyThreadState* tstate) {
  return tstate->dict != nullptr && PyDict_GetItemString(tstate->dict, kPassiveKey) != nullptr;
}

Scheduler* Scheduler::for_thread(unsigned long thread_id) {
  auto it = registry().find(thread_id);
  return it == registry().end() ? nullptr : it->second;
}

void Scheduler::thread_ended() {
  // As in Stackless, tasklets with C state are killed while the thread can
  // still run them (this is called from the ending thread itself, with its
  // thread state intact); any that survive can never resume. Tasklets keep
  // their objects and report thread_id -1; the Scheduler object stays
  // allocated while they point at it (release()).
  // At interpreter shutdown the atexit hook has already done this while the
  // modules were still there; switching into tasklets now would find them gone.
  if (PyThread_get_thread_ident() == thread_id_ && current_ == main_ && !_Py_IsFinalizing()) {
    kill_all_started();
  }
  alive_ = false;
  registry().erase(thread_id_);
  if (tls_current_ == this) tls_current_ = nullptr;
  while (ring_.head() != nullptr) remove(ring_.head());
  watchdogs_.clear();
  parking_.clear();  // nothing will pop its entries now
  Py_CLEAR(longest_slice_.tasklet);
  Py_CLEAR(current_);
  Py_CLEAR(main_);
  release();  // the thread's own count, last: it may free this scheduler
}

bool Scheduler::other_threads_exist() const {
  PyInterpreterState* interp = tstate_->interp;
  for (PyThreadState* ts = PyInterpreterState_ThreadHead(interp); ts != nullptr;
       ts = PyThreadState_Next(ts)) {
    if (ts != tstate_ && !is_passive_thread(ts)) return true;
  }
  return false;
}

bool Scheduler::idle_wait() {
  // Nothing runnable here. Wait, without the GIL, for a sleeper's deadline or
  // for another thread to hand us a tasklet (a channel partner, a notify);
  // false when neither can happen (deadlock) or a signal handler raised.
  while (ring_.head() == nullptr) {
    if (!loop_driven_ && parking_.timer_count() > 0 && parking_.wake_due(now_ns()) > 0) continue;
    uint64_t in_flight = external_work_ ? external_work_() : 0;
    if (ring_.head() != nullptr) break;
    bool sleepers = has_sleepers();
    if (!sleepers && in_flight == 0 && !other_threads_exist()) return false;
    // Re-check every 50 ms whether other threads still exist.
    int64_t until = now_ns() + 50'000'000;
    if (sleepers) until = std::min(until, parking_.next_deadline());
    Py_BEGIN_ALLOW_THREADS
    idle_wake_.wait_until(until);
    Py_END_ALLOW_THREADS
    // Ctrl-C (or another signal handler's exception) ends the wait.
    if (PyErr_CheckSignals() < 0) return false;
  }
  return true;
}

void Scheduler::wake_idle() { idle_wake_.poke(); }

bool Scheduler::expects_work() {
  if (loop_driven_) return false;
  if (has_sleepers()) return true;
  return external_work_ && external_work_() > 0;
}

void Scheduler::insert_from_any_thread(Tasklet* t, bool run_next) {
  if (t->in_ring_) return;
  // Rings are only touched with the GIL held, which the caller holds: the
  // owner sees t when it next looks at its ring (as in Stackless, which
  // inserts into the other thread's queue directly).
  if (run_next && current_->in_ring_) {
    insert_after_current(t);
  } else {
    insert(t);
    // The owner waits (blocked or idle): t is what it runs first.
    if (run_next) ring_.set_head(t);
  }
  if (this != tls_current_) wake_idle();
}

void Scheduler::make_runnable(Tasklet* t) {
  Scheduler* owner = t->sched_;
  if (owner == nullptr || !owner->alive_) return;
  // Straight into its own thread's ring, also from another thread: rings are
  // only touched with the GIL held, and we hold it (idle_wake.h).
  if (!t->in_ring_ && !t->blocked() && !t->finished_) owner->insert(t);
  if (owner != tls_current_) owner->idle_wake_.poke();
}

}  // namespace shard::engine
