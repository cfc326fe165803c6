#pragma once
// A tasklet: the Python object `stackless.tasklet` and the C++ state behind it.
// It runs its callable on its own fiber (a C stack from StackPool) and keeps the
// interpreter state of that execution while it is switched out (PythonState).
//
// Links: a tasklet is in at most one chain at a time, through next_/prev_:
// its thread's runnable ring (Scheduler) or the wait queue of the channel it is
// blocked on (blocker_ != nullptr), or its scheduler's list of tasklets that
// could not get a stack (unstartable_). Each chain owns a reference to its members.

#include <Python.h>

#include <atomic>
#include <boost/context/detail/fcontext.hpp>
#include <cstdint>

#include "shard/engine/blocker.h"
#include "shard/engine/python_state.h"

namespace shard::engine {

class Scheduler;
struct Channel;

// The last serial number given to a tasklet (guarded by the GIL).
inline uint64_t last_tasklet_serial = 0;

struct Tasklet {
  PyObject_HEAD
  // Unique for the process's life, unlike the address (tasklet objects are
  // reused from a free list): what identifies a lock's owner.
  uint64_t serial_ = ++last_tasklet_serial;
  PyObject* weakrefs_ = nullptr;
  PyObject* dict_ = nullptr;

  Tasklet* next_ = nullptr;
  Tasklet* prev_ = nullptr;
  Blocker* blocker_ = nullptr;  // set while blocked (on a channel)
  Channel* channel_ = nullptr;  // the channel it is blocked on
  int8_t blocked_dir_ = 0;      // +1 blocked sending, -1 receiving
  bool in_ring_ = false;

  Scheduler* sched_ = nullptr;  // owning thread
  // Its thread's list of tasklets with C state (started, not finished).
  Tasklet* live_next_ = nullptr;
  Tasklet* live_prev_ = nullptr;
  unsigned long thread_id_ = 0;

  bool is_main_ = false;
  bool started_ = false;   // its fiber has run (it has C state)
  bool finished_ = false;
  bool atomic_ = false;
  bool ignore_nesting_ = false;
  bool block_trap_ = false;
  // On its scheduler's list of tasklets that could not get a stack, waiting
  // for their error to be reported: dead already (nothing may insert it).
  bool unstartable_ = false;

  PyObject* func_ = nullptr;
  PyObject* args_ = nullptr;  // tuple; non-null once setup/bind gave arguments
  PyObject* kwargs_ = nullptr;
  PyObject* tempval_ = nullptr;
  bool tempval_is_exc_ = false;  // a channel passed an exception to raise
  PyObject* name_ = nullptr;

  // Non-zero while parked (Scheduler::park): whoever swaps it back to zero
  // first (a notify, a timer, a kill) is the one that wakes it.
  std::atomic<uint64_t> wait_token_{0};
  bool timed_out_ = false;         // how its last park ended
  uint64_t notified_token_ = 0;    // the wait that Scheduler::wake ended

  // An exception to raise in this tasklet when it next resumes (kill, throw,
  // raise_exception, send_exception, an error passed on to main).
  PyObject* pending_exc_ = nullptr;
  // The contextvars context it starts in: a copy of its creator's.
  PyObject* init_context_ = nullptr;

  // Where it resumes (see fiber_switch.h): where it was suspended, or, once a
  // stack is reserved and before its first run, the fresh context that starts
  // its body there; null while it runs and before a stack is reserved.
  boost::context::detail::fcontext_t context_ = nullptr;
  void* stack_block_ = nullptr;          // from StackPool, from start to finish
  _PyStackChunk* root_chunk_ = nullptr;  // in its stack block, once started
  std::size_t root_chunk_size_ = 0;
  PythonState pystate_;
  _PyErr_StackItem exc_root_{};
  // While suspended inside a call: the top of its innermost frame's
  // evaluation stack (args + nargs of the switch point's vectorcall), so the GC
  // can see that stack too; null when unknown.
  PyObject* const* suspended_sp_ = nullptr;

  bool alive() const { return !finished_ && !unstartable_ && (started_ || args_ != nullptr); }
  bool blocked() const { return blocker_ != nullptr; }
  bool scheduled() const { return in_ring_ || blocked(); }
};

extern PyTypeObject TaskletType;

inline Tasklet* as_tasklet(PyObject* obj) { return reinterpret_cast<Tasklet*>(obj); }
inline PyObject* as_object(Tasklet* t) { return reinterpret_cast<PyObject*>(t); }

// Creates an unbound tasklet of the exact base type (used for main tasklets).
Tasklet* new_tasklet();

// Tasklet objects alive (a leak check; GIL held).
std::size_t tasklets_alive();

}  // namespace shard::engine
