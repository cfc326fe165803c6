// uthread's blocking primitives, as Python types of the _engine module:
// Semaphore, RLock (uthread.CriticalSection), Event, and WaitQueue (under
// uthread.Condition). Each keeps its state and waiters under one std::mutex (see
// waiters.h), so they work between tasklets of different threads. Waits take a
// timeout in seconds (None: forever) and return False when it expires.
#include <mutex>
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
// `give_back` undoes a hand-off that raced with an error (lock held).
template <typename GiveBack>
int wait_for_handoff(std::mutex& mutex, Waiters& waiters, uint64_t token, double timeout, GiveBack give_back) {
  WaitResult result = park_until(token, timeout);
  if (result == WaitResult::kWoken) return 1;
  Tasklet* self = Scheduler::current_or_create()->current_tasklet();
  std::lock_guard lock(mutex);
  waiters.forget(self, token);
  if (result == WaitResult::kError && handed_off(token)) give_back();
  return result == WaitResult::kTimedOut ? 0 : -1;
}

// ---------------------------------------------------------------- Semaphore

struct Semaphore {
  PyObject_HEAD
  std::mutex mutex;
  long value = 1;
  Waiters waiters;
};

void semaphore_release_locked(Semaphore* s) {
  if (!s->waiters.wake_one()) ++s->value;  // else the unit went to the waiter
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
  if (!parse_wait("acquire", args, nargs, kwnames, true, &blocking, &timeout)) return nullptr;
  auto* s = reinterpret_cast<Semaphore*>(self);
  uint64_t token;
  {
    std::lock_guard lock(s->mutex);
    if (s->value > 0) {
      --s->value;
      Py_RETURN_TRUE;
    }
    if (!blocking) Py_RETURN_FALSE;
    token = s->waiters.prepare();
    if (token == 0) return nullptr;
  }
  int got = wait_for_handoff(s->mutex, s->waiters, token, timeout, [s] { semaphore_release_locked(s); });
  if (got < 0) return nullptr;
  return PyBool_FromLong(got);
}

PyObject* semaphore_release(PyObject* self, PyObject*) {
  auto* s = reinterpret_cast<Semaphore*>(self);
  std::lock_guard lock(s->mutex);
  semaphore_release_locked(s);
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
  auto* s = reinterpret_cast<Semaphore*>(self);
  std::lock_guard lock(s->mutex);
  return PyLong_FromLong(s->value);
}

PyObject* semaphore_waiting(PyObject* self, void*) {
  auto* s = reinterpret_cast<Semaphore*>(self);
  std::lock_guard lock(s->mutex);
  return PyLong_FromSize_t(s->waiters.size());
}

PyMethodDef semaphore_methods[] = {
    {"acquire", as_cfunction(semaphore_acquire), METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=None) -> bool: take a unit, waiting FIFO for one"},
    {"release", semaphore_release, METH_NOARGS, "release(): give a unit back (to the first waiter)"},
    {"__enter__", semaphore_enter, METH_NOARGS, nullptr},
    {"__exit__", semaphore_exit, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef semaphore_getset[] = {
    {"value", semaphore_value, nullptr, "units available", nullptr},
    {"waiting", semaphore_waiting, nullptr, "tasklets waiting", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// ---------------------------------------------------------------- RLock

struct RLock {
  PyObject_HEAD
  std::mutex mutex;
  Tasklet* owner = nullptr;  // borrowed identity; never dereferenced
  long depth = 0;
  Waiters waiters;
};

// Hands ownership to the first waiter, or frees the lock (mutex held).
void rlock_pass_on_locked(RLock* l) {
  l->owner = nullptr;
  l->depth = 0;
  // The woken waiter sets itself as owner when it resumes; until then the lock
  // is reserved for it.
  if (l->waiters.wake_one()) l->depth = -1;
}

PyObject* rlock_acquire(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  bool blocking;
  double timeout;
  if (!parse_wait("acquire", args, nargs, kwnames, true, &blocking, &timeout)) return nullptr;
  auto* l = reinterpret_cast<RLock*>(self);
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  Tasklet* me = sched->current_tasklet();
  uint64_t token;
  {
    std::lock_guard lock(l->mutex);
    if (l->owner == me) {
      ++l->depth;
      Py_RETURN_TRUE;
    }
    if (l->owner == nullptr && l->depth == 0) {
      l->owner = me;
      l->depth = 1;
      Py_RETURN_TRUE;
    }
    if (!blocking) Py_RETURN_FALSE;
    token = l->waiters.prepare();
    if (token == 0) return nullptr;
  }
  int got = wait_for_handoff(l->mutex, l->waiters, token, timeout, [l] { rlock_pass_on_locked(l); });
  if (got <= 0) return got < 0 ? nullptr : Py_NewRef(Py_False);
  std::lock_guard lock(l->mutex);
  l->owner = me;
  l->depth = 1;
  Py_RETURN_TRUE;
}

PyObject* rlock_release(PyObject* self, PyObject*) {
  auto* l = reinterpret_cast<RLock*>(self);
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  std::lock_guard lock(l->mutex);
  if (l->owner != sched->current_tasklet()) {
    PyErr_SetString(PyExc_RuntimeError, "cannot release a lock this tasklet does not hold");
    return nullptr;
  }
  if (--l->depth == 0) rlock_pass_on_locked(l);
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

PyObject* rlock_locked(PyObject* self, void*) {
  auto* l = reinterpret_cast<RLock*>(self);
  std::lock_guard lock(l->mutex);
  return PyBool_FromLong(l->depth != 0);
}

PyObject* rlock_owned(PyObject* self, void*) {
  auto* l = reinterpret_cast<RLock*>(self);
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  std::lock_guard lock(l->mutex);
  return PyBool_FromLong(l->owner == sched->current_tasklet());
}

// For Condition.wait: fully release (whatever the depth) and return the depth.
PyObject* rlock_release_save(PyObject* self, PyObject*) {
  auto* l = reinterpret_cast<RLock*>(self);
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  std::lock_guard lock(l->mutex);
  if (l->owner != sched->current_tasklet()) {
    PyErr_SetString(PyExc_RuntimeError, "cannot wait on a condition whose lock this tasklet does not hold");
    return nullptr;
  }
  long depth = l->depth;
  rlock_pass_on_locked(l);
  return PyLong_FromLong(depth);
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
  auto* l = reinterpret_cast<RLock*>(self);
  {
    std::lock_guard lock(l->mutex);
    l->depth = depth;
  }
  if (type != nullptr) {
    PyErr_Restore(type, value, tb);
    return nullptr;
  }
  Py_RETURN_NONE;
}

PyMethodDef rlock_methods[] = {
    {"acquire", as_cfunction(rlock_acquire), METH_FASTCALL | METH_KEYWORDS,
     "acquire(blocking=True, timeout=None) -> bool: re-entrant; waiters are served FIFO"},
    {"release", rlock_release, METH_NOARGS, "release(): by the owning tasklet"},
    {"_release_save", rlock_release_save, METH_NOARGS, nullptr},
    {"_acquire_restore", rlock_acquire_restore, METH_O, nullptr},
    {"__enter__", rlock_enter, METH_NOARGS, nullptr},
    {"__exit__", rlock_exit, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef rlock_getset[] = {
    {"locked", rlock_locked, nullptr, "held by some tasklet", nullptr},
    {"owned", rlock_owned, nullptr, "held by the current tasklet", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// ---------------------------------------------------------------- Event

struct Event {
  PyObject_HEAD
  std::mutex mutex;
  bool flag = false;
  Waiters waiters;
};

PyObject* event_wait(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  bool blocking;
  double timeout;
  if (!parse_wait("wait", args, nargs, kwnames, false, &blocking, &timeout)) return nullptr;
  auto* e = reinterpret_cast<Event*>(self);
  uint64_t token;
  {
    std::lock_guard lock(e->mutex);
    if (e->flag) Py_RETURN_TRUE;
    token = e->waiters.prepare();
    if (token == 0) return nullptr;
  }
  int got = wait_for_handoff(e->mutex, e->waiters, token, timeout, [] {});
  if (got < 0) return nullptr;
  return PyBool_FromLong(got);
}

PyObject* event_set(PyObject* self, PyObject*) {
  auto* e = reinterpret_cast<Event*>(self);
  std::lock_guard lock(e->mutex);
  e->flag = true;
  e->waiters.wake_all();
  Py_RETURN_NONE;
}

PyObject* event_clear(PyObject* self, PyObject*) {
  auto* e = reinterpret_cast<Event*>(self);
  std::lock_guard lock(e->mutex);
  e->flag = false;
  Py_RETURN_NONE;
}

PyObject* event_is_set(PyObject* self, PyObject*) {
  auto* e = reinterpret_cast<Event*>(self);
  std::lock_guard lock(e->mutex);
  return PyBool_FromLong(e->flag);
}

PyMethodDef event_methods[] = {
    {"wait", as_cfunction(event_wait), METH_FASTCALL | METH_KEYWORDS,
     "wait(timeout=None) -> bool: until set; False on timeout"},
    {"set", event_set, METH_NOARGS, "set(): wake every waiter; later waits return at once"},
    {"clear", event_clear, METH_NOARGS, "clear(): later waits block again"},
    {"is_set", event_is_set, METH_NOARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

// ---------------------------------------------------------------- WaitQueue

struct WaitQueue {
  PyObject_HEAD
  std::mutex mutex;
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
  if (!parse_timeout(parsed[1], &timeout)) return nullptr;
  auto* q = reinterpret_cast<WaitQueue*>(self);
  uint64_t token;
  {
    std::lock_guard lock(q->mutex);
    token = q->waiters.prepare();
    if (token == 0) return nullptr;
  }
  PyObject* depth = rlock_release_save(parsed[0], nullptr);
  if (depth == nullptr) {
    std::lock_guard lock(q->mutex);
    q->waiters.forget(Scheduler::current_or_create()->current_tasklet(), token);
    return nullptr;
  }
  int got = wait_for_handoff(q->mutex, q->waiters, token, timeout, [q] { q->waiters.wake_one(); });
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
  std::lock_guard lock(q->mutex);
  long woken = 0;
  while (woken < n && q->waiters.wake_one()) ++woken;
  return PyLong_FromLong(woken);
}

PyObject* waitqueue_notify_all(PyObject* self, PyObject*) {
  auto* q = reinterpret_cast<WaitQueue*>(self);
  std::lock_guard lock(q->mutex);
  return PyLong_FromLong(q->waiters.wake_all());
}

Py_ssize_t waitqueue_len(PyObject* self) {
  auto* q = reinterpret_cast<WaitQueue*>(self);
  std::lock_guard lock(q->mutex);
  return static_cast<Py_ssize_t>(q->waiters.size());
}

PyMethodDef waitqueue_methods[] = {
    {"wait", as_cfunction(waitqueue_wait), METH_FASTCALL | METH_KEYWORDS,
     "wait(lock, timeout=None) -> bool: release lock, wait for notify, re-acquire"},
    {"notify", as_cfunction(waitqueue_notify), METH_FASTCALL | METH_KEYWORDS, "notify(n=1) -> woken"},
    {"notify_all", waitqueue_notify_all, METH_NOARGS, "notify_all() -> woken"},
    {nullptr, nullptr, 0, nullptr},
};

PySequenceMethods waitqueue_sequence = {waitqueue_len};

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
                                       semaphore_new, dealloc<Semaphore>, semaphore_methods, semaphore_getset);
PyTypeObject RLockType = make_type("_engine.RLock", sizeof(RLock),
                                   "RLock(): re-entrant lock owned by a tasklet (uthread.CriticalSection)",
                                   new_rlock, dealloc<RLock>, rlock_methods, rlock_getset);
PyTypeObject EventType = make_type("_engine.Event", sizeof(Event), "Event(): a flag tasklets wait for",
                                   new_event, dealloc<Event>, event_methods, nullptr);
PyTypeObject WaitQueueType = [] {
  PyTypeObject type = make_type("_engine.WaitQueue", sizeof(WaitQueue),
                                "WaitQueue(): tasklets waiting to be notified (under uthread.Condition)",
                                new_waitqueue, dealloc<WaitQueue>, waitqueue_methods, nullptr);
  type.tp_as_sequence = &waitqueue_sequence;
  return type;
}();

}  // namespace shard::engine
