// uthread's blocking primitives, as Python types of the _engine module:
// Semaphore, RLock (uthread.CriticalSection), Event, and WaitQueue (under
// uthread.Condition). Their state is guarded by the GIL (the model is written
// in waiters.h): each operation converts its arguments first, then reads and
// updates the state without running Python code, and drops references at its
// end. They work between tasklets of different threads: a waiter of another
// thread is handed to its own scheduler. Waits take a timeout in seconds
// (None: forever) and return False when it expires.
#include <new>

#include "bindings/arguments.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/sync_types.h"
#include "shard/engine/waiters.h"

namespace shard::engine {
namespace {

template <typename T>
PyObject* alloc(PyTypeObject* type) {
  PyObject* self = type->tp_alloc(type, 0);
  if (self == nullptr) return nullptr;
  PyObject header = *self;
  new (self) T{header};
  return self;
}

template <typename T>
void dealloc(PyObject* self) {
  reinterpret_cast<T*>(self)->~T();
  Py_TYPE(self)->tp_free(self);
}

// A wait may need this thread's scheduler: it is made before the state is
// read, because making it allocates Python objects (the GC, finalizers).
bool ready_to_wait() { return Scheduler::current_or_create() != nullptr; }

bool parse_wait(const char* name, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                bool with_blocking, bool* blocking, double* timeout) {
  PyObject* parsed[2] = {nullptr, nullptr};
  bool ok = with_blocking ? parse_arguments(name, args, nargs, kwnames, {"blocking", "timeout"}, 0, parsed)
                          : parse_arguments(name, args, nargs, kwnames, {"timeout"}, 0, parsed + 1);
  if (!ok) return false;
  *blocking = true;
  if (parsed[0] != nullptr) {
    int flag = PyObject_IsTrue(parsed[0]);
    if (flag < 0) return false;
    *blocking = flag != 0;
  }
  return parse_timeout(parsed[1], timeout);
}

// The shared wait: returns 1 when woken by a hand-off, 0 on timeout, -1 on error.
// `give_back` undoes a hand-off that raced with an error.
template <typename GiveBack>
int wait_for_handoff(Waiters& waiters, uint64_t token, double timeout, GiveBack give_back) {
  WaitResult result = park_until(token, timeout);
  if (result == WaitResult::kWoken) return 1;
  DeferredDecrefs later;
  Tasklet* self = Scheduler::existing()->current_tasklet();
  waiters.forget(self, token, later);
  if (result == WaitResult::kError && handed_off(token)) give_back(later);
  return result == WaitResult::kTimedOut ? 0 : -1;
}

// ---------------------------------------------------------------- Semaphore

struct Semaphore {
  PyObject_HEAD
  long value = 1;
  Waiters waiters;
};

void semaphore_give(Semaphore* s, DeferredDecrefs& later) {
  if (!s->waiters.wake_one(later)) ++s->value;  // else the unit went to the waiter
}

PyObject* semaphore_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  static const char* names[] = {"value", nullptr};
  long value = 1;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|l:Semaphore", const_cast<char**>(names), &value)) return nullptr;
  if (value < 0) return PyErr_Format(PyExc_ValueError, "Semaphore value must be >= 0, not %ld", value);
  PyObject* self = alloc<Semaphore>(type);
  if (self != nullptr) reinterpret_cast<Semaphore*>(self)->value = value;
  return self;
}

PyObject* semaphore_acquire(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  bool blocking;
  double timeout;
  if (!parse_wait("acquire", args, nargs, kwnames, true, &blocking, &timeout) || !ready_to_wait()) return nullptr;
  auto* s = reinterpret_cast<Semaphore*>(self);
  if (s->value > 0) {
    --s->value;
    Py_RETURN_TRUE;
  }
  if (!blocking) Py_RETURN_FALSE;
  uint64_t token = s->waiters.prepare();
  if (token == 0) return nullptr;
  int got = wait_for_handoff(s->waiters, token, timeout, [s](DeferredDecrefs& later) { semaphore_give(s, later); });
  if (got < 0) return nullptr;
  return PyBool_FromLong(got);
}

PyObject* semaphore_release(PyObject* self, PyObject*) {
  DeferredDecrefs later;
  semaphore_give(reinterpret_cast<Semaphore*>(self), later);
  Py_RETURN_NONE;
}

PyObject* semaphore_exit(PyObject* self, PyObject*) {
  PyObject* r = semaphore_release(self, nullptr);
  Py_XDECREF(r);
  if (r == nullptr) return nullptr;
  Py_RETURN_FALSE;
}

PyObject* semaphore_enter(PyObject* self, PyObject*) {
  PyObject* r = semaphore_acquire(self, nullptr, 0, nullptr);
  if (r == nullptr) return nullptr;
  Py_DECREF(r);
  return Py_NewRef(self);
}

PyObject* semaphore_value(PyObject* self, void*) {
  return PyLong_FromLong(reinterpret_cast<Semaphore*>(self)->value);
}

PyObject* semaphore_waiting(PyObject* self, void*) {
  return PyLong_FromSize_t(reinterpret_cast<Semaphore*>(self)->waiters.size());
}

PyMethodDef semaphore_methods[] = {
    {"acquire", as_cfunction<semaphore_acquire>(), METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=None) -> bool: take a unit, waiting FIFO for one"},
    {"release", as_cfunction<semaphore_release>(), METH_NOARGS, "release(): give a unit back (to the first waiter)"},
    {"__enter__", as_cfunction<semaphore_enter>(), METH_NOARGS, nullptr},
    {"__exit__", as_cfunction<semaphore_exit>(), METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef semaphore_getset[] = {
    {"value", guarded<semaphore_value>, nullptr, "units available", nullptr},
    {"waiting", guarded<semaphore_waiting>, nullptr, "tasklets waiting", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// ---------------------------------------------------------------- RLock

struct RLock {
  PyObject_HEAD
  // The owner's Tasklet::serial_ (0: none), never its address: a tasklet that
  // dies holding the lock leaves it held, and the next tasklet the free list
  // puts at the same address must not find itself the owner.
  uint64_t owner = 0;
  long depth = 0;
  Waiters waiters;
};

// Hands ownership to the first waiter, or frees the lock.
void rlock_pass_on(RLock* l, DeferredDecrefs& later) {
  l->owner = 0;
  l->depth = 0;
  // The woken waiter sets itself as owner when it resumes; until then the lock
  // is reserved for it.
  if (l->waiters.wake_one(later)) l->depth = -1;
}

PyObject* rlock_acquire(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  bool blocking;
  double timeout;
  if (!parse_wait("acquire", args, nargs, kwnames, true, &blocking, &timeout)) return nullptr;
  auto* l = reinterpret_cast<RLock*>(self);
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  const uint64_t me = sched->current_tasklet()->serial_;
  if (l->owner == me) {
    ++l->depth;
    Py_RETURN_TRUE;
  }
  if (l->owner == 0 && l->depth == 0) {
    l->owner = me;
    l->depth = 1;
    Py_RETURN_TRUE;
  }
  if (!blocking) Py_RETURN_FALSE;
  uint64_t token = l->waiters.prepare();
  if (token == 0) return nullptr;
  int got = wait_for_handoff(l->waiters, token, timeout, [l](DeferredDecrefs& later) { rlock_pass_on(l, later); });
  if (got <= 0) return got < 0 ? nullptr : Py_NewRef(Py_False);
  l->owner = me;
  l->depth = 1;
  Py_RETURN_TRUE;
}

// The current tasklet's serial, or 0 with an error set.
uint64_t current_serial() {
  Scheduler* sched = Scheduler::current_or_create();
  return sched != nullptr ? sched->current_tasklet()->serial_ : 0;
}

PyObject* rlock_release(PyObject* self, PyObject*) {
  auto* l = reinterpret_cast<RLock*>(self);
  uint64_t me = current_serial();
  if (me == 0) return nullptr;
  if (l->owner != me) {
    PyErr_SetString(PyExc_RuntimeError, "cannot release a lock this tasklet does not hold");
    return nullptr;
  }
  DeferredDecrefs later;
  if (--l->depth == 0) rlock_pass_on(l, later);
  Py_RETURN_NONE;
}

PyObject* rlock_enter(PyObject* self, PyObject*) {
  PyObject* r = rlock_acquire(self, nullptr, 0, nullptr);
  if (r == nullptr) return nullptr;
  Py_DECREF(r);
  return Py_NewRef(self);
}

PyObject* rlock_exit(PyObject* self, PyObject*) {
  PyObject* r = rlock_release(self, nullptr);
  if (r == nullptr) return nullptr;
  Py_DECREF(r);
  Py_RETURN_FALSE;
}

PyObject* rlock_locked(PyObject* self, void*) { return PyBool_FromLong(reinterpret_cast<RLock*>(self)->depth != 0); }

PyObject* rlock_owned(PyObject* self, void*) {
  uint64_t me = current_serial();
  if (me == 0) return nullptr;
  return PyBool_FromLong(reinterpret_cast<RLock*>(self)->owner == me);
}

// For Condition.wait: fully release (whatever the depth) and return the depth.
PyObject* rlock_release_save(PyObject* self, PyObject*) {
  auto* l = reinterpret_cast<RLock*>(self);
  uint64_t me = current_serial();
  if (me == 0) return nullptr;
  if (l->owner != me) {
    PyErr_SetString(PyExc_RuntimeError, "cannot wait on a condition whose lock this tasklet does not hold");
    return nullptr;
  }
  long depth = l->depth;
  PyObject* result = PyLong_FromLong(depth);
  if (result == nullptr) return nullptr;
  DeferredDecrefs later;
  rlock_pass_on(l, later);
  return result;
}

// Takes the lock back after Condition.wait, whatever happens meanwhile: the
// caller's `with` block will release it. A kill (or another error) that comes
// while waiting for it is re-raised once the lock is held.
PyObject* rlock_acquire_restore(PyObject* self, PyObject* depth_obj) {
  long depth = PyLong_AsLong(depth_obj);
  if (depth == -1 && PyErr_Occurred()) return nullptr;
  PyObject *type = nullptr, *value = nullptr, *tb = nullptr;
  // Bounded: an error that repeats (a deadlock) is not an interruption.
  for (int attempt = 0;; ++attempt) {
    PyObject* r = rlock_acquire(self, nullptr, 0, nullptr);
    if (r != nullptr) {
      Py_DECREF(r);
      break;
    }
    if (attempt == 8) {
      Py_XDECREF(type);
      Py_XDECREF(value);
      Py_XDECREF(tb);
      return nullptr;  // the lock is not held
    }
    if (type == nullptr) {
      PyErr_Fetch(&type, &value, &tb);
    } else {
      PyErr_Clear();  // the first error wins
    }
  }
  reinterpret_cast<RLock*>(self)->depth = depth;
  if (type != nullptr) {
    PyErr_Restore(type, value, tb);
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyMethodDef rlock_methods[] = {
    {"acquire", as_cfunction<rlock_acquire>(), METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=None) -> bool: re-entrant; waiters are served FIFO"},
    {"release", as_cfunction<rlock_release>(), METH_NOARGS, "release(): by the owning tasklet"},
    {"_release_save", as_cfunction<rlock_release_save>(), METH_NOARGS, nullptr},
    {"_acquire_restore", as_cfunction<rlock_acquire_restore>(), METH_O, nullptr},
    {"__enter__", as_cfunction<rlock_enter>(), METH_NOARGS, nullptr},
    {"__exit__", as_cfunction<rlock_exit>(), METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef rlock_getset[] = {
    {"locked", guarded<rlock_locked>, nullptr, "held by some tasklet", nullptr},
    {"owned", guarded<rlock_owned>, nullptr, "held by the current tasklet", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// ---------------------------------------------------------------- Event

struct Event {
  PyObject_HEAD
  bool flag = false;
  Waiters waiters;
};

PyObject* event_wait(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  bool blocking;
  double timeout;
  if (!parse_wait("wait", args, nargs, kwnames, false, &blocking, &timeout) || !ready_to_wait()) return nullptr;
  auto* e = reinterpret_cast<Event*>(self);
  if (e->flag) Py_RETURN_TRUE;
  uint64_t token = e->waiters.prepare();
  if (token == 0) return nullptr;
  int got = wait_for_handoff(e->waiters, token, timeout, [](DeferredDecrefs&) {});
  if (got < 0) return nullptr;
  return PyBool_FromLong(got);
}

PyObject* event_set(PyObject* self, PyObject*) {
  auto* e = reinterpret_cast<Event*>(self);
  DeferredDecrefs later;
  e->flag = true;
  e->waiters.wake_all(later);
  Py_RETURN_NONE;
}

PyObject* event_clear(PyObject* self, PyObject*) {
  reinterpret_cast<Event*>(self)->flag = false;
  Py_RETURN_NONE;
}

PyObject* event_is_set(PyObject* self, PyObject*) {
  return PyBool_FromLong(reinterpret_cast<Event*>(self)->flag);
}

PyMethodDef event_methods[] = {
    {"wait", as_cfunction<event_wait>(), METH_FASTCALL | METH_KEYWORDS,
     "wait(timeout=None) -> bool: until set; False on timeout"},
    {"set", as_cfunction<event_set>(), METH_NOARGS, "set(): wake every waiter; later waits return at once"},
    {"clear", as_cfunction<event_clear>(), METH_NOARGS, "clear(): later waits block again"},
    {"is_set", as_cfunction<event_is_set>(), METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

// ---------------------------------------------------------------- WaitQueue

struct WaitQueue {
  PyObject_HEAD
  Waiters waiters;
};

// wait(lock, timeout=None): registers, releases `lock` (an RLock held by the
// caller, any depth), parks, and re-acquires it; True if notified. Registering
// before releasing means a notify made under the lock cannot be missed.
PyObject* waitqueue_wait(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* parsed[2] = {nullptr, nullptr};
  if (!parse_arguments("wait", args, nargs, kwnames, {"lock", "timeout"}, 1, parsed)) return nullptr;
  if (!PyObject_TypeCheck(parsed[0], &RLockType)) {
    return PyErr_Format(PyExc_TypeError, "wait() lock must be an RLock, not %s", Py_TYPE(parsed[0])->tp_name);
  }
  double timeout;
  if (!parse_timeout(parsed[1], &timeout) || !ready_to_wait()) return nullptr;
  auto* q = reinterpret_cast<WaitQueue*>(self);
  uint64_t token = q->waiters.prepare();
  if (token == 0) return nullptr;
  PyObject* depth = rlock_release_save(parsed[0], nullptr);
  if (depth == nullptr) {
    DeferredDecrefs later;
    q->waiters.forget(Scheduler::existing()->current_tasklet(), token, later);
    return nullptr;
  }
  int got = wait_for_handoff(q->waiters, token, timeout, [q](DeferredDecrefs& later) { q->waiters.wake_one(later); });
  // Re-acquire even after an error, as threading.Condition does.
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyObject* restored = rlock_acquire_restore(parsed[0], depth);
  Py_DECREF(depth);
  if (restored == nullptr) {
    // Killed while taking the lock back: it is held now; the earlier error, if
    // any, is the one to raise.
    if (type != nullptr) {
      PyErr_Clear();
      PyErr_Restore(type, value, tb);
    }
    return nullptr;
  }
  Py_DECREF(restored);
  PyErr_Restore(type, value, tb);
  if (got < 0) return nullptr;
  return PyBool_FromLong(got);
}

PyObject* waitqueue_notify(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* n_obj = nullptr;
  if (!parse_arguments("notify", args, nargs, kwnames, {"n"}, 0, &n_obj)) return nullptr;
  long n = n_obj != nullptr ? PyLong_AsLong(n_obj) : 1;
  if (n == -1 && PyErr_Occurred()) return nullptr;
  auto* q = reinterpret_cast<WaitQueue*>(self);
  DeferredDecrefs later;
  long woken = 0;
  while (woken < n && q->waiters.wake_one(later)) ++woken;
  return PyLong_FromLong(woken);
}

PyObject* waitqueue_notify_all(PyObject* self, PyObject*) {
  DeferredDecrefs later;
  return PyLong_FromLong(reinterpret_cast<WaitQueue*>(self)->waiters.wake_all(later));
}

Py_ssize_t waitqueue_len(PyObject* self) {
  return static_cast<Py_ssize_t>(reinterpret_cast<WaitQueue*>(self)->waiters.size());
}

PyMethodDef waitqueue_methods[] = {
    {"wait", as_cfunction<waitqueue_wait>(), METH_FASTCALL | METH_KEYWORDS,
     "wait(lock, timeout=None) -> bool: release lock, wait for notify, re-acquire"},
    {"notify", as_cfunction<waitqueue_notify>(), METH_FASTCALL | METH_KEYWORDS, "notify(n=1) -> woken"},
    {"notify_all", as_cfunction<waitqueue_notify_all>(), METH_NOARGS, "notify_all() -> woken"},
    {nullptr, nullptr, 0, nullptr},
};

PySequenceMethods waitqueue_sequence = {guarded<waitqueue_len>};

PyObject* new_event(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (!_PyArg_NoPositional(type->tp_name, args) || !_PyArg_NoKeywords(type->tp_name, kwargs)) return nullptr;
  return alloc<Event>(type);
}
PyObject* new_rlock(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (!_PyArg_NoPositional(type->tp_name, args) || !_PyArg_NoKeywords(type->tp_name, kwargs)) return nullptr;
  return alloc<RLock>(type);
}
PyObject* new_waitqueue(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (!_PyArg_NoPositional(type->tp_name, args) || !_PyArg_NoKeywords(type->tp_name, kwargs)) return nullptr;
  return alloc<WaitQueue>(type);
}

PyTypeObject make_type(const char* name, Py_ssize_t size, const char* doc, newfunc tp_new, destructor tp_dealloc,
                       PyMethodDef* methods, PyGetSetDef* getset) {
  PyTypeObject type{PyVarObject_HEAD_INIT(nullptr, 0)};
  type.tp_name = name;
  type.tp_basicsize = size;
  type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE;
  type.tp_doc = doc;
  type.tp_new = tp_new;
  type.tp_dealloc = tp_dealloc;
  type.tp_methods = methods;
  type.tp_getset = getset;
  return type;
}

}  // namespace

PyTypeObject SemaphoreType = make_type("_engine.Semaphore", sizeof(Semaphore),
                                       "Semaphore(value=1): counting semaphore for tasklets of any thread",
                                       guarded<semaphore_new>, guarded<dealloc<Semaphore>>, semaphore_methods, semaphore_getset);
PyTypeObject RLockType = make_type("_engine.RLock", sizeof(RLock),
                                   "RLock(): re-entrant lock owned by a tasklet (uthread.CriticalSection)",
                                   guarded<new_rlock>, guarded<dealloc<RLock>>, rlock_methods, rlock_getset);
PyTypeObject EventType = make_type("_engine.Event", sizeof(Event), "Event(): a flag tasklets wait for",
                                   guarded<new_event>, guarded<dealloc<Event>>, event_methods, nullptr);
PyTypeObject WaitQueueType = [] {
  PyTypeObject type = make_type("_engine.WaitQueue", sizeof(WaitQueue),
                                "WaitQueue(): tasklets waiting to be notified (under uthread.Condition)",
                                guarded<new_waitqueue>, guarded<dealloc<WaitQueue>>, waitqueue_methods, nullptr);
  type.tp_as_sequence = &waitqueue_sequence;
  return type;
}();

}  // namespace shard::engine
