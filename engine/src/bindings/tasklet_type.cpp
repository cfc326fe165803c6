// The Python face of Tasklet: stackless.tasklet.
#include <new>

#include <vector>

#include "bindings/arguments.h"
#include "core/frame_internals.h"
#include "shard/engine/blocker.h"
#include "shard/engine/channel.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/stack_pool.h"
#include "shard/engine/stackless_errors.h"

namespace shard::engine {
namespace {

// A main tasklet runs on its thread's stack; a started tasklet keeps its stack
// block until its last switch is over, which may be after it already reports
// dead (its thread waits idle, GIL released, in that switch): neither bind()
// nor bind_thread() may touch either.
bool holds_c_state(const Tasklet* t) { return t->is_main_ || (t->started_ && t->stack_block_ != nullptr); }

bool check_runnable(Tasklet* t) {
  if (!t->alive()) {
    PyErr_SetString(PyExc_RuntimeError, "You cannot run an unbound(dead) tasklet");
    return false;
  }
  if (t->blocked()) {
    PyErr_SetString(PyExc_RuntimeError, "You cannot run a blocked tasklet");
    return false;
  }
  return true;
}

// The context a new tasklet starts in: a copy of its creator's, as asyncio does
// for tasks, so context variables flow into tasklets but never back.
PyObject* copy_current_context() {
  if (PyThreadState_Get()->context == nullptr) return nullptr;
  return PyContext_CopyCurrent();
}

// Finished tasklets of the exact base type are kept for reuse. Tasklet churn is
// a game server's hot path, and without this every batch of new tasklets
// faults in fresh memory after CPython handed the last batch's arenas back to
// the OS. Bounded: at most kFreeListMax objects (~44 MB) are kept.
constexpr std::size_t kFreeListMax = 1u << 17;

std::vector<PyObject*>& free_list() {  // guarded by the GIL
  static auto* list = new std::vector<PyObject*>();
  return *list;
}

std::size_t tasklet_objects = 0;  // alive, free list excluded (guarded by the GIL)

Tasklet* alloc_tasklet(PyTypeObject* type) {
  ++tasklet_objects;  // undone below when the allocation fails
  if (type == &TaskletType && !free_list().empty()) {
    PyObject* self = free_list().back();
    free_list().pop_back();
    shard_gc_object_reuse(self);
    PyObject header = *self;
    auto* t = new (self) Tasklet{header};
    PyObject_GC_Track(self);
    return t;
  }
  PyObject* self = type->tp_alloc(type, 0);
  if (self == nullptr) {
    --tasklet_objects;
    return nullptr;
  }
  // tp_alloc zeroed the object and set its header; construct the C++ members.
  PyObject header = *self;  // constructing the members may clear the memory first
  return new (self) Tasklet{header};
}

PyObject* tasklet_new(PyTypeObject* type, PyObject*, PyObject*) {
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  Tasklet* t = alloc_tasklet(type);
  if (t == nullptr) return nullptr;
  sched->retain();
  t->sched_ = sched;
  t->thread_id_ = sched->thread_id();
  return as_object(t);
}

int traverse_tasklet(PyObject* self, visitproc visit, void* arg) {
  Tasklet* t = as_tasklet(self);
  Py_VISIT(Py_TYPE(self));
  Py_VISIT(t->dict_);
  Py_VISIT(t->func_);
  Py_VISIT(t->args_);
  Py_VISIT(t->kwargs_);
  Py_VISIT(t->tempval_);
  Py_VISIT(t->name_);
  Py_VISIT(t->pending_exc_);
  Py_VISIT(t->init_context_);
  // A suspended tasklet's frames and interpreter state are visible to the GC,
  // so cycles through blocked tasklets are collected. The running tasklet's
  // state is live in the thread state; the main tasklet is never garbage.
  bool suspended = t->started_ && !t->finished_ && !t->is_main_ && t->sched_ != nullptr &&
                   t->sched_->alive() && t->sched_->current_tasklet() != t;
  if (suspended) return t->pystate_.traverse(visit, arg, t->suspended_sp_);
  return 0;
}

int clear_tasklet(PyObject* self) {
  Tasklet* t = as_tasklet(self);
  Py_CLEAR(t->dict_);
  Py_CLEAR(t->func_);
  Py_CLEAR(t->args_);
  Py_CLEAR(t->kwargs_);
  Py_CLEAR(t->tempval_);
  Py_CLEAR(t->name_);
  Py_CLEAR(t->pending_exc_);
  Py_CLEAR(t->init_context_);
  return 0;
}

// A tasklet with C state that nobody references any more (or only a garbage
// cycle does, say through the channel it waits on) is killed, so its finally
// blocks run and its stack returns to the pool (PEP 442 finalizer).
void finalize_tasklet(PyObject* self) {
  Tasklet* t = as_tasklet(self);
  if (!t->started_ || t->finished_ || t->is_main_) return;
  Scheduler* sched = Scheduler::existing();
  if (sched == nullptr || t->sched_ != sched || sched->current_tasklet() == t) {
    PyErr_Clear();
    return;
  }
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  for (int attempt = 0; attempt < 10 && t->started_ && !t->finished_; ++attempt) {
    PyObject* exc = PyObject_CallNoArgs(TaskletExitError);
    PyObject* result = exc != nullptr ? sched->throw_into(t, exc, true) : nullptr;
    if (result == nullptr) PyErr_WriteUnraisable(self);
    Py_XDECREF(result);
  }
  PyErr_Restore(type, value, tb);
}

void dealloc_tasklet(PyObject* self) {
  if (PyObject_CallFinalizerFromDealloc(self) < 0) return;  // resurrected
  PyObject_GC_UnTrack(self);
  Tasklet* t = as_tasklet(self);
  if (t->weakrefs_ != nullptr) PyObject_ClearWeakRefs(self);
  clear_tasklet(self);
  if (t->stack_block_ != nullptr && t->started_) {
    // Still has C state (its thread ended, or it refused to die): what its
    // stack holds cannot be unwound safely, so the block is never reused.
    PySys_WriteStderr("shard: tasklet %p dropped with a live C stack; its stack is leaked\n", self);
    StackPool::instance().abandon(t->stack_block_);
  } else if (t->stack_block_ != nullptr) {
    StackPool::instance().release(t->stack_block_);  // reserved, never run on
  }
  if (t->sched_ != nullptr) t->sched_->release();
  t->~Tasklet();
  --tasklet_objects;
  if (Py_TYPE(self) == &TaskletType && free_list().size() < kFreeListMax) {
    free_list().push_back(self);
    return;
  }
  Py_TYPE(self)->tp_free(self);
}

// ---------------------------------------------------------------- bind/setup

PyObject* bind_impl(Tasklet* t, PyObject* func, PyObject* args, PyObject* kwargs) {
  if (func == Py_None) func = nullptr;
  if (args == Py_None) args = nullptr;
  if (kwargs == Py_None) kwargs = nullptr;
  // Stackless's checks, in its order and words (PyTasklet_BindEx). A started
  // tasklet has C state here (its own C stack) until its last switch is over.
  if (func != nullptr && !PyCallable_Check(func)) {
    PyErr_SetString(PyExc_TypeError, "tasklet function must be a callable or None");
    return nullptr;
  }
  if (t->alive()) {
    Scheduler* sched = Scheduler::existing();
    if (sched != nullptr && sched->current_tasklet() == t) {
      PyErr_SetString(PyExc_RuntimeError, "can't (re)bind the current tasklet");
      return nullptr;
    }
    if (t->scheduled()) {
      PyErr_SetString(PyExc_RuntimeError, "tasklet is scheduled");
      return nullptr;
    }
  }
  if (holds_c_state(t)) {
    PyErr_SetString(PyExc_RuntimeError, "tasklet has C state on its stack");
    return nullptr;
  }
  if (kwargs != nullptr && !PyDict_Check(kwargs)) {
    PyErr_Format(PyExc_TypeError, "tasklet kwargs must be a dict, not %s", Py_TYPE(kwargs)->tp_name);
    return nullptr;
  }
  PyObject* args_tuple = nullptr;
  if (args != nullptr) {
    args_tuple = PySequence_Tuple(args);
    if (args_tuple == nullptr) return nullptr;
  } else if (kwargs != nullptr) {
    args_tuple = PyTuple_New(0);
  }
  if (func == nullptr && args_tuple == nullptr) {
    // bind(None): unbind completely.
    Py_CLEAR(t->func_);
  } else if (func != nullptr) {
    Py_XSETREF(t->func_, Py_NewRef(func));
  } else if (t->func_ == nullptr) {
    Py_DECREF(args_tuple);
    PyErr_SetString(PyExc_RuntimeError, "the tasklet was not bound to a function");
    return nullptr;
  }
  Py_XSETREF(t->args_, args_tuple);
  Py_XSETREF(t->kwargs_, Py_XNewRef(kwargs));
  if (t->finished_ && args_tuple != nullptr) {
    t->finished_ = false;  // a dead tasklet bound anew starts over
    t->started_ = false;
  }
  Py_XSETREF(t->init_context_, args_tuple != nullptr ? copy_current_context() : nullptr);
  if (PyErr_Occurred()) return nullptr;
  return Py_NewRef(as_object(t));
}

int tasklet_init(PyObject* self, PyObject* args, PyObject* kwargs) {
  static const char* names[] = {"func", "args", "kwargs", nullptr};
  PyObject *func = nullptr, *fargs = nullptr, *fkwargs = nullptr;
  // Stackless's __init__ is bind(), and its errors say so.
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|OOO:bind", const_cast<char**>(names), &func,
                                   &fargs, &fkwargs)) {
    return -1;
  }
  if (func == nullptr && fargs == nullptr && fkwargs == nullptr) return 0;
  PyObject* result = bind_impl(as_tasklet(self), func, fargs, fkwargs);
  Py_XDECREF(result);
  return result != nullptr ? 0 : -1;
}

PyObject* tasklet_bind(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* parsed[3];
  if (!parse_arguments("bind", args, nargs, kwnames, {"func", "args", "kwargs"}, 0, parsed)) return nullptr;
  return bind_impl(as_tasklet(self), parsed[0], parsed[1], parsed[2]);
}

PyObject* insert_impl(Tasklet* t) {
  if (!check_runnable(t)) return nullptr;
  if (t->sched_ == nullptr || !t->sched_->alive()) {
    PyErr_SetString(PyExc_RuntimeError, "Target thread isn't initialized");
    return nullptr;
  }
  if (!t->in_ring_) t->sched_->insert_from_any_thread(t, false);
  return Py_NewRef(as_object(t));
}

PyObject* setup_impl(Tasklet* t, PyObject* args, PyObject* kwargs) {
  if (t->alive()) {
    PyErr_SetString(PyExc_RuntimeError, "tasklet is alive");
    return nullptr;
  }
  PyObject* bound = bind_impl(t, nullptr, args, kwargs);
  if (bound == nullptr) return nullptr;
  PyObject* inserted = insert_impl(t);
  if (inserted == nullptr) {
    Py_DECREF(bound);
    return nullptr;
  }
  Py_DECREF(inserted);
  return bound;
}

PyObject* tasklet_call(PyObject* self, PyObject* args, PyObject* kwargs) {
  return setup_impl(as_tasklet(self), args, kwargs);
}

PyObject* tasklet_setup(PyObject* self, PyObject* args, PyObject* kwargs) {
  return setup_impl(as_tasklet(self), args, kwargs);
}

// ---------------------------------------------------------------- scheduling

PyObject* tasklet_insert(PyObject* self, PyObject*) { return insert_impl(as_tasklet(self)); }

PyObject* tasklet_remove(PyObject* self, PyObject*) {
  Tasklet* t = as_tasklet(self);
  if (t->blocked()) {
    PyErr_SetString(PyExc_RuntimeError, "You cannot remove a blocked tasklet.");
    return nullptr;
  }
  if (t->in_ring_) {
    // Also from another thread: rings are only touched with the GIL held, so
    // the owner's ring is ours to change while we hold it (as in Stackless).
    Scheduler* owner = t->sched_;
    if (owner->current_tasklet() == t) {
      PyErr_SetString(PyExc_RuntimeError, "The current tasklet cannot be removed.");
      return nullptr;
    }
    owner->remove(t);
  }
  return Py_NewRef(self);
}

PyObject* run_or_switch(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                        const char* name, bool pause) {
  if (!parse_arguments(name, args, nargs, kwnames, {}, 0, nullptr)) return nullptr;
  Tasklet* t = as_tasklet(self);
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr || !check_runnable(t)) return nullptr;
  if (t->sched_ != sched) {
    // A tasklet of another thread runs there, next; the caller goes on.
    if (t->sched_ == nullptr || !t->sched_->alive()) {
      PyErr_SetString(PyExc_RuntimeError, "tasklet has no thread");
      return nullptr;
    }
    if (pause) {
      PyErr_SetString(PyExc_RuntimeError, "can't switch to a different thread.");
      return nullptr;
    }
    t->sched_->insert_from_any_thread(t, true);
    Py_RETURN_NONE;
  }
  sched->set_call_sp(stack_top(args, nargs, kwnames));
  return sched->run_tasklet(t, pause);
}

PyObject* tasklet_run(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return run_or_switch(self, args, nargs, kwnames, "tasklet.run", false);
}

PyObject* tasklet_switch(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return run_or_switch(self, args, nargs, kwnames, "tasklet.switch", true);
}

// ---------------------------------------------------------------- exceptions

PyObject* throw_impl(Tasklet* t, PyObject* exc, bool pending, PyObject* const* sp) {
  if (!t->alive()) {
    bool is_exit = PyObject_TypeCheck(exc, reinterpret_cast<PyTypeObject*>(TaskletExitError));
    Py_DECREF(exc);
    if (is_exit) Py_RETURN_NONE;
    PyErr_SetString(PyExc_RuntimeError, "You cannot throw to a dead tasklet");
    return nullptr;
  }
  if (t->sched_ == nullptr || !t->sched_->alive()) {
    Py_DECREF(exc);
    PyErr_SetString(PyExc_RuntimeError, "tasklet has no thread");
    return nullptr;
  }
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) {
    Py_DECREF(exc);
    return nullptr;
  }
  if (t->sched_ != sched) return sched->throw_into(t, exc, false);  // raised when its thread resumes it
  sched->set_call_sp(sp);
  return sched->throw_into(t, exc, !pending);
}

PyObject* tasklet_kill(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* pending = nullptr;
  if (!parse_arguments("kill", args, nargs, kwnames, {"pending"}, 0, &pending)) return nullptr;
  int is_pending = pending != nullptr ? PyObject_IsTrue(pending) : 0;
  if (is_pending < 0) return nullptr;
  Tasklet* t = as_tasklet(self);
  if (!t->alive()) Py_RETURN_NONE;
  if (t->sched_ == nullptr || !t->sched_->alive()) {
    // Its thread ended: it can never run again (Stackless drops its frames).
    // It leaves its channel; a C stack it still has stays leaked.
    if (t->blocked()) t->blocker_->release(t);
    Py_CLEAR(t->args_);
    Py_CLEAR(t->kwargs_);
    Py_CLEAR(t->func_);
    Py_CLEAR(t->pending_exc_);
    Py_RETURN_NONE;
  }
  if (!t->started_ && !is_pending) {
    // Never ran: there is nothing to unwind; it is simply discarded. (A
    // pending kill makes it runnable and it dies at its start, as in Stackless.)
    if (t->in_ring_) t->sched_->remove(t);
    Py_CLEAR(t->args_);
    Py_CLEAR(t->kwargs_);
    Py_CLEAR(t->func_);
    Py_CLEAR(t->pending_exc_);
    Py_RETURN_NONE;
  }
  PyObject* exc = PyObject_CallNoArgs(TaskletExitError);
  if (exc == nullptr) return nullptr;
  return throw_impl(t, exc, is_pending != 0, stack_top(args, nargs, kwnames));
}

PyObject* tasklet_throw(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* parsed[4];
  if (!parse_arguments("throw", args, nargs, kwnames, {"exc", "val", "tb", "pending"}, 1, parsed)) {
    return nullptr;
  }
  int pending = parsed[3] != nullptr ? PyObject_IsTrue(parsed[3]) : 0;
  if (pending < 0) return nullptr;
  PyObject* exc = make_exception(parsed[0], parsed[1], parsed[2]);
  if (exc == nullptr) return nullptr;
  return throw_impl(as_tasklet(self), exc, pending != 0, stack_top(args, nargs, kwnames));
}

PyObject* tasklet_raise_exception(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                                  PyObject* kwnames) {
  PyObject* exc = exception_from_class(args, nargs, kwnames, "tasklet.raise_exception", "raise_exception");
  if (exc == nullptr) return nullptr;
  return throw_impl(as_tasklet(self), exc, false, stack_top(args, nargs, kwnames));
}

// ---------------------------------------------------------------- flags, threads

PyObject* set_flag(bool* field, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, const char* qualname,
                   const char* type_error) {
  PyObject* flag;
  if (!parse_arguments(qualname, args, nargs, kwnames, {"flag"}, 1, &flag)) return nullptr;
  if (!PyLong_Check(flag)) {
    PyErr_SetString(PyExc_TypeError, type_error);
    return nullptr;
  }
  int value = PyObject_IsTrue(flag);
  if (value < 0) return nullptr;
  bool old = *field;
  *field = value != 0;
  return PyBool_FromLong(old);
}

PyObject* tasklet_set_atomic(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return set_flag(&as_tasklet(self)->atomic_, args, nargs, kwnames, "tasklet.set_atomic",
                  "set_atomic needs exactly one bool or integer");
}

PyObject* tasklet_set_ignore_nesting(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                                     PyObject* kwnames) {
  return set_flag(&as_tasklet(self)->ignore_nesting_, args, nargs, kwnames, "tasklet.set_ignore_nesting",
                  "set_ignore_nesting needs exactly one bool or integer");
}

PyObject* tasklet_bind_thread(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* id_arg = nullptr;
  if (!parse_arguments("bind_thread", args, nargs, kwnames, {"thread_id"}, 0, &id_arg)) return nullptr;
  if (id_arg != nullptr && !PyLong_Check(id_arg)) {
    PyErr_Format(PyExc_TypeError, "bind_thread() argument 1 must be int, not %s", type_name(id_arg));
    return nullptr;
  }
  Tasklet* t = as_tasklet(self);
  Scheduler* target = nullptr;
  long long wanted = -1;
  if (id_arg != nullptr) {
    wanted = PyLong_AsLongLong(id_arg);
    if (wanted == -1 && PyErr_Occurred()) return nullptr;
  }
  target = wanted == -1 ? Scheduler::current_or_create() : Scheduler::for_thread(static_cast<unsigned long>(wanted));
  if (wanted == -1 && target == nullptr) return nullptr;
  if (wanted == -1 && t->sched_ == target) Py_RETURN_NONE;  // as Stackless: already here, nothing to check
  // Stackless's checks, in its order and words (PyTasklet_BindThread).
  if (t->in_ring_) {
    PyErr_SetString(PyExc_RuntimeError, "can't (re)bind a runnable tasklet");
    return nullptr;
  }
  if (holds_c_state(t)) {
    PyErr_SetString(PyExc_RuntimeError, "tasklet has C state on its stack");
    return nullptr;
  }
  if (target == nullptr) {
    PyErr_SetString(PyExc_ValueError, "bad thread");
    return nullptr;
  }
  target->retain();
  if (t->sched_ != nullptr) t->sched_->release();
  t->sched_ = target;
  t->thread_id_ = target->thread_id();
  Py_RETURN_NONE;
}

// ---------------------------------------------------------------- properties

// As in Stackless, a tasklet of a thread that ended is not alive (its thread
// killed what it could); bind_thread() can adopt an unstarted one again.
bool alive_in_a_thread(const Tasklet* t) { return t->alive() && t->sched_ != nullptr && t->sched_->alive(); }

PyObject* get_alive(PyObject* self, void*) { return PyBool_FromLong(alive_in_a_thread(as_tasklet(self))); }
PyObject* get_blocked(PyObject* self, void*) { return PyBool_FromLong(as_tasklet(self)->blocked()); }
PyObject* get_scheduled(PyObject* self, void*) { return PyBool_FromLong(as_tasklet(self)->scheduled()); }
PyObject* get_paused(PyObject* self, void*) {
  Tasklet* t = as_tasklet(self);
  return PyBool_FromLong(alive_in_a_thread(t) && !t->scheduled());
}
// "True, if the tasklet can be completely restored by pickling/unpickling"
// (Stackless): tasklets cannot be pickled here at all (docs/engine.md).
PyObject* get_restorable(PyObject*, void*) { Py_RETURN_FALSE; }
PyObject* get_atomic(PyObject* self, void*) { return PyBool_FromLong(as_tasklet(self)->atomic_); }
PyObject* get_ignore_nesting(PyObject* self, void*) { return PyBool_FromLong(as_tasklet(self)->ignore_nesting_); }
PyObject* get_block_trap(PyObject* self, void*) { return PyBool_FromLong(as_tasklet(self)->block_trap_); }
int set_block_trap(PyObject* self, PyObject* value, void*) {
  if (value == nullptr) {
    PyErr_SetString(PyExc_TypeError, "cannot delete block_trap");
    return -1;
  }
  if (!PyLong_Check(value)) {
    PyErr_SetString(PyExc_TypeError, "block_trap must be set to a bool or integer");
    return -1;
  }
  int flag = PyObject_IsTrue(value);
  if (flag < 0) return -1;
  as_tasklet(self)->block_trap_ = flag != 0;
  return 0;
}
PyObject* get_is_current(PyObject* self, void*) {
  Tasklet* t = as_tasklet(self);
  return PyBool_FromLong(t->sched_ != nullptr && t->sched_->alive() && t->sched_->current_tasklet() == t);
}
PyObject* get_is_main(PyObject* self, void*) { return PyBool_FromLong(as_tasklet(self)->is_main_); }
PyObject* get_thread_id(PyObject* self, void*) {
  Tasklet* t = as_tasklet(self);
  if (t->sched_ == nullptr || !t->sched_->alive()) return PyLong_FromLong(-1);
  return PyLong_FromUnsignedLong(t->thread_id_);
}
// The thread state to read a tasklet's counters from while it runs in this
// thread; null when they are in its saved state (a tasklet of another thread
// that runs there reports what it had when it last switched).
const PyThreadState* running_state(const Tasklet* t) {
  Scheduler* sched = Scheduler::existing();
  return sched != nullptr && sched->current_tasklet() == t ? PyThreadState_Get() : nullptr;
}
PyObject* get_recursion_depth(PyObject* self, void*) {
  Tasklet* t = as_tasklet(self);
  if (!t->started_ || t->finished_) return PyLong_FromLong(0);
  return PyLong_FromLong(t->pystate_.recursion_depth(running_state(t)));
}
PyObject* get_nesting_level(PyObject* self, void*) {
  Tasklet* t = as_tasklet(self);
  if (!t->started_ || t->finished_) return PyLong_FromLong(0);
  return PyLong_FromLong(t->pystate_.nesting_level(running_state(t)));
}
// Stackless's _channel: the channel it is blocked on, or None.
PyObject* get_channel(PyObject* self, void*) {
  Channel* ch = as_tasklet(self)->channel_;
  return Py_NewRef(ch != nullptr ? reinterpret_cast<PyObject*>(ch) : Py_None);
}
PyObject* get_next(PyObject* self, void*) {
  Tasklet* n = as_tasklet(self)->next_;
  return Py_NewRef(n != nullptr ? as_object(n) : Py_None);
}
PyObject* get_prev(PyObject* self, void*) {
  Tasklet* p = as_tasklet(self)->prev_;
  return Py_NewRef(p != nullptr ? as_object(p) : Py_None);
}
// Stackless keeps the function of a tasklet that is not alive in tempval:
// bind(f) makes tempval f, setting tempval rebinds it, and setup() calls it.
bool tempval_is_function(const Tasklet* t) { return !t->alive(); }
PyObject* get_tempval(PyObject* self, void*) {
  Tasklet* t = as_tasklet(self);
  PyObject* v = tempval_is_function(t) ? t->func_ : t->tempval_;
  return Py_NewRef(v != nullptr ? v : Py_None);
}
int set_tempval(PyObject* self, PyObject* value, void*) {
  Tasklet* t = as_tasklet(self);
  if (tempval_is_function(t)) {
    Py_XSETREF(t->func_, value != Py_None ? Py_XNewRef(value) : nullptr);
    return 0;
  }
  Py_XSETREF(t->tempval_, Py_XNewRef(value));
  t->tempval_is_exc_ = false;
  return 0;
}
PyObject* get_name(PyObject* self, void*) {
  PyObject* n = as_tasklet(self)->name_;
  return Py_NewRef(n != nullptr ? n : Py_None);
}
int set_name(PyObject* self, PyObject* value, void*) {
  if (value != nullptr && value != Py_None && !PyUnicode_Check(value)) {
    PyErr_Format(PyExc_TypeError, "tasklet name must be a str or None, not %s", Py_TYPE(value)->tp_name);
    return -1;
  }
  Py_XSETREF(as_tasklet(self)->name_, value == Py_None ? nullptr : Py_XNewRef(value));
  return 0;
}
PyObject* get_frame(PyObject* self, void*) {
  Tasklet* t = as_tasklet(self);
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  if (sched->current_tasklet() == t) {
    PyFrameObject* frame = PyEval_GetFrame();
    return Py_NewRef(frame != nullptr ? reinterpret_cast<PyObject*>(frame) : Py_None);
  }
  if (!t->started_ || t->finished_ || t->pystate_.cframe() == nullptr || t->sched_ != sched) Py_RETURN_NONE;
  // Materialise the frame object of the suspended tasklet's innermost frame by
  // briefly pointing the thread state at its frame chain. No Python code may
  // run meanwhile, so the frame object's allocation must not start a
  // collection: a finalizer would run inside the other tasklet's call chain.
  PyThreadState* tstate = PyThreadState_Get();
  _PyCFrame* own = tstate->cframe;
  const int gc_was_enabled = PyGC_Disable();
  tstate->cframe = t->pystate_.cframe();
  PyFrameObject* frame = PyThreadState_GetFrame(tstate);
  tstate->cframe = own;
  if (gc_was_enabled) PyGC_Enable();
  if (frame == nullptr) {
    if (PyErr_Occurred()) return nullptr;
    Py_RETURN_NONE;
  }
  return reinterpret_cast<PyObject*>(frame);
}

PyObject* tasklet_repr(PyObject* self) {
  Tasklet* t = as_tasklet(self);
  if (t->name_ != nullptr) return PyUnicode_FromFormat("<%s %R at %p>", Py_TYPE(self)->tp_name, t->name_, self);
  return PyUnicode_FromFormat("<%s object at %p>", Py_TYPE(self)->tp_name, self);
}

PyMethodDef tasklet_methods[] = {
    {"bind", as_cfunction<tasklet_bind>(), METH_FASTCALL | METH_KEYWORDS,
     "bind(func=None, args=None, kwargs=None): bind a callable (and arguments, making it alive)"},
    {"setup", as_cfunction<tasklet_setup>(),
     METH_VARARGS | METH_KEYWORDS, "setup(*args, **kwargs): supply arguments and insert it"},
    {"insert", as_cfunction<tasklet_insert>(), METH_NOARGS, "insert(): append to the runnables queue"},
    {"remove", as_cfunction<tasklet_remove>(), METH_NOARGS, "remove(): take it out of the runnables queue"},
    {"run", as_cfunction<tasklet_run>(), METH_FASTCALL | METH_KEYWORDS, "run(): run it now; the caller stays scheduled"},
    {"switch", as_cfunction<tasklet_switch>(), METH_FASTCALL | METH_KEYWORDS, "switch(): run it now; the caller is paused"},
    {"kill", as_cfunction<tasklet_kill>(), METH_FASTCALL | METH_KEYWORDS, "kill(pending=False): raise TaskletExit in it"},
    {"throw", as_cfunction<tasklet_throw>(), METH_FASTCALL | METH_KEYWORDS,
     "throw(exc=None, val=None, tb=None, pending=False): raise in it, like raise"},
    {"raise_exception", as_cfunction<tasklet_raise_exception>(), METH_FASTCALL | METH_KEYWORDS,
     "raise_exception(exc_class, *args): raise exc_class(*args) in it"},
    {"set_atomic", as_cfunction<tasklet_set_atomic>(), METH_FASTCALL | METH_KEYWORDS,
     "set_atomic(flag): no involuntary switches while set; returns the old value"},
    {"set_ignore_nesting", as_cfunction<tasklet_set_ignore_nesting>(), METH_FASTCALL | METH_KEYWORDS,
     "set_ignore_nesting(flag): returns the old value"},
    {"bind_thread", as_cfunction<tasklet_bind_thread>(), METH_FASTCALL | METH_KEYWORDS,
     "bind_thread(thread_id=-1): move a tasklet that has not started to a thread"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef tasklet_getset[] = {
    {"alive", guarded<get_alive>, nullptr, "bound with arguments or started, and not finished", nullptr},
    {"blocked", guarded<get_blocked>, nullptr, "waiting on a channel", nullptr},
    {"scheduled", guarded<get_scheduled>, nullptr, "runnable or blocked", nullptr},
    {"paused", guarded<get_paused>, nullptr, "alive but neither runnable nor blocked", nullptr},
    {"restorable", guarded<get_restorable>, nullptr, "has no C state that would be lost", nullptr},
    {"atomic", guarded<get_atomic>, nullptr, "inside set_atomic(True)", nullptr},
    {"ignore_nesting", guarded<get_ignore_nesting>, nullptr, "inside set_ignore_nesting(True)", nullptr},
    {"block_trap", guarded<get_block_trap>, guarded<set_block_trap>, "blocking on a channel raises RuntimeError", nullptr},
    {"is_current", guarded<get_is_current>, nullptr, "the running tasklet of its thread", nullptr},
    {"is_main", guarded<get_is_main>, nullptr, "the main tasklet of its thread", nullptr},
    {"thread_id", guarded<get_thread_id>, nullptr, "its thread's id, -1 once that thread ended", nullptr},
    {"next", guarded<get_next>, nullptr, "the next tasklet in its chain", nullptr},
    {"prev", guarded<get_prev>, nullptr, "the previous tasklet in its chain", nullptr},
    {"tempval", guarded<get_tempval>, guarded<set_tempval>, "the value it is given when it resumes", nullptr},
    {"name", guarded<get_name>, guarded<set_name>, "a name for logs and debugging", nullptr},
    {"frame", guarded<get_frame>, nullptr, "its current Python frame", nullptr},
    {"recursion_depth", guarded<get_recursion_depth>, nullptr,
     "The system recursion_depth is replicated for every tasklet.\nThey all start running with a recursion_depth "
     "of zero.",
     nullptr},
    {"nesting_level", guarded<get_nesting_level>, nullptr,
     "The interpreter nesting level is monitored by every tasklet.\nThey all start running with a nesting level "
     "of zero.",
     nullptr},
    {"_channel", guarded<get_channel>, nullptr, "The channel this tasklet is blocked on, or None if it is not blocked.",
     nullptr},
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

PyTypeObject TaskletType = [] {
  PyTypeObject type{PyVarObject_HEAD_INIT(nullptr, 0)};
  type.tp_name = "stackless.tasklet";
  type.tp_basicsize = sizeof(Tasklet);
  type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC;
  type.tp_doc = "tasklet(func=None, args=None, kwargs=None): a microthread running func on its own fiber";
  type.tp_new = guarded<tasklet_new>;
  type.tp_init = guarded<tasklet_init>;
  type.tp_call = guarded<tasklet_call>;
  type.tp_dealloc = guarded<dealloc_tasklet>;
  type.tp_finalize = guarded<finalize_tasklet>;
  type.tp_traverse = traverse_tasklet;
  type.tp_clear = clear_tasklet;
  type.tp_repr = guarded<tasklet_repr>;
  type.tp_methods = tasklet_methods;
  type.tp_getset = tasklet_getset;
  type.tp_weaklistoffset = offsetof(Tasklet, weakrefs_);
  type.tp_dictoffset = offsetof(Tasklet, dict_);
  return type;
}();

Tasklet* new_tasklet() { return alloc_tasklet(&TaskletType); }

std::size_t tasklets_alive() { return tasklet_objects; }

}  // namespace shard::engine
