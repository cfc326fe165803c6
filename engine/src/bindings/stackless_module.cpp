// The `stackless` module: module-level functions, the atomic context manager,
// TaskletExit, and the module attributes computed on access (current, main,
// runcount, threads).
#include "shard/engine/stackless_module.h"

#include <algorithm>
#include <utility>

#include "bindings/arguments.h"
#include "bindings/stackless_hooks.h"
#include "shard/engine/channel.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/stackless_errors.h"

namespace shard::engine {

PyObject* make_exception(PyObject* type, PyObject* value, PyObject* tb) {
  if (value == Py_None) value = nullptr;
  if (tb == Py_None) tb = nullptr;
  if (tb != nullptr && !PyTraceBack_Check(tb)) {
    PyErr_SetString(PyExc_TypeError, "third argument must be a traceback object");
    return nullptr;
  }
  PyObject* exc = nullptr;
  if (PyExceptionInstance_Check(type)) {
    if (value != nullptr) {
      PyErr_SetString(PyExc_TypeError, "instance exception may not have a separate value");
      return nullptr;
    }
    exc = Py_NewRef(type);
  } else if (PyExceptionClass_Check(type)) {
    if (value != nullptr && PyObject_TypeCheck(value, reinterpret_cast<PyTypeObject*>(type))) {
      exc = Py_NewRef(value);
    } else if (value == nullptr) {
      exc = PyObject_CallNoArgs(type);
    } else if (PyTuple_Check(value)) {
      exc = PyObject_Call(type, value, nullptr);
    } else {
      exc = PyObject_CallOneArg(type, value);
    }
    if (exc == nullptr) return nullptr;
    if (!PyExceptionInstance_Check(exc)) {
      PyErr_Format(PyExc_TypeError, "calling %R should have returned an instance of BaseException, not %s", type,
                   Py_TYPE(exc)->tp_name);
      Py_DECREF(exc);
      return nullptr;
    }
  } else {
    PyErr_Format(PyExc_TypeError, "exceptions must be classes, or instances, not %s", Py_TYPE(type)->tp_name);
    return nullptr;
  }
  if (tb != nullptr && PyException_SetTraceback(exc, tb) < 0) {
    Py_DECREF(exc);
    return nullptr;
  }
  return exc;
}

PyObject* exception_from_class(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, const char* qualname,
                               const char* name) {
  if (kwnames != nullptr && PyTuple_GET_SIZE(kwnames) > 0) {
    return PyErr_Format(PyExc_TypeError, "%s() takes no keyword arguments", qualname);
  }
  if (nargs < 1) return PyErr_Format(PyExc_TypeError, "%s() takes at least 1 argument", name);
  if (!PyExceptionClass_Check(args[0])) {
    return PyErr_Format(PyExc_TypeError, "%s needs Exception or string subclass as first parameter", qualname);
  }
  PyObject* exc = PyObject_Vectorcall(args[0], args + 1, nargs - 1, nullptr);
  if (exc != nullptr && !PyExceptionInstance_Check(exc)) {
    PyErr_Format(PyExc_TypeError, "calling %R should have returned an instance of BaseException, not %s", args[0],
                 Py_TYPE(exc)->tp_name);
    Py_DECREF(exc);
    return nullptr;
  }
  return exc;
}

namespace {

PyObject* getcurrent(PyObject*, PyObject*) {
  Scheduler* sched = Scheduler::current_or_create();
  return sched != nullptr ? Py_NewRef(as_object(sched->current_tasklet())) : nullptr;
}

PyObject* getmain(PyObject*, PyObject*) {
  Scheduler* sched = Scheduler::current_or_create();
  return sched != nullptr ? Py_NewRef(as_object(sched->main())) : nullptr;
}

PyObject* getruncount(PyObject*, PyObject*) {
  Scheduler* sched = Scheduler::current_or_create();
  return sched != nullptr ? PyLong_FromLong(sched->runcount()) : nullptr;
}

// Stackless's PyStackless_GetCurrentId(): a main tasklet's is its thread's id
// (the same before and after the tasklet exists), another's is derived from
// its address.
PyObject* getcurrentid(PyObject*, PyObject*) {
  Scheduler* sched = Scheduler::existing();
  Tasklet* t = sched != nullptr ? sched->current_tasklet() : nullptr;
  if (t == nullptr || t == sched->main()) return PyLong_FromUnsignedLong(PyThread_get_thread_ident());
  auto address = reinterpret_cast<uintptr_t>(t);
  return PyLong_FromUnsignedLong(static_cast<unsigned long>(address ^ (address >> 32)));
}

PyObject* getdebug(PyObject*, PyObject*) {
#ifdef Py_DEBUG
  Py_RETURN_TRUE;
#else
  Py_RETURN_FALSE;
#endif
}

// The tasklets with a C stack of their own (started, unfinished), which
// Stackless lists as the ones that may need killing to be freed.
PyObject* getuncollectables(PyObject*, PyObject*) {
  PyObject* list = PyList_New(0);
  if (list != nullptr && !Scheduler::append_started_tasklets(list)) Py_CLEAR(list);
  return list;
}

// Every Python thread, the main thread first, as Stackless lists them.
PyObject* thread_list() {
  PyThreadState* own = PyThreadState_Get();
  PyObject* list = PyList_New(0);
  if (list == nullptr) return nullptr;
  PyThreadState* first = PyInterpreterState_ThreadHead(own->interp);
  for (PyThreadState* ts = first; ts != nullptr; ts = PyThreadState_Next(ts)) {
    PyObject* id = PyLong_FromUnsignedLong(ts->thread_id);
    // Thread states are listed newest first: the main thread is the last one.
    if (id == nullptr || PyList_Insert(list, 0, id) < 0) {
      Py_XDECREF(id);
      Py_DECREF(list);
      return nullptr;
    }
    Py_DECREF(id);
  }
  return list;
}

bool python_thread_exists(unsigned long id) {
  PyThreadState* own = PyThreadState_Get();
  for (PyThreadState* ts = PyInterpreterState_ThreadHead(own->interp); ts != nullptr; ts = PyThreadState_Next(ts)) {
    if (ts->thread_id == id) return true;
  }
  return false;
}

// get_thread_info(thread_id=-1, flags=0), as Stackless parses it ("|O!k"):
// an int id, -1 for this thread. Of the flags, Stackless's own test suite uses
// bits 30 and 31 to get internals appended that do not exist here; the others
// are reserved, so all are accepted and change nothing.
PyObject* getthreads(PyObject*, PyObject*) { return thread_list(); }

PyObject* get_thread_info(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* p[2];
  if (!parse_arguments("get_thread_info", args, nargs, kwnames, {"thread_id", "flags"}, 0, p)) return nullptr;
  for (int i = 0; i < 2; ++i) {
    if (p[i] != nullptr && !PyLong_Check(p[i])) {
      PyErr_Format(PyExc_TypeError, "get_thread_info() argument %d must be int, not %s", i + 1,
                   type_name(p[i]));
      return nullptr;
    }
  }
  if (p[1] != nullptr && PyLong_AsUnsignedLongMask(p[1]) == static_cast<unsigned long>(-1) && PyErr_Occurred()) {
    return nullptr;
  }
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  int overflow = 0;
  if (p[0] != nullptr && !(PyLong_AsLongAndOverflow(p[0], &overflow) == -1 && overflow == 0)) {
    // -1 (handled above) is this thread; no other negative number names one.
    unsigned long id = PyLong_AsUnsignedLong(p[0]);
    bool is_id = !(id == static_cast<unsigned long>(-1) && PyErr_Occurred());
    if (!is_id) {
      if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return nullptr;
      PyErr_Clear();
    }
    sched = is_id ? Scheduler::for_thread(id) : nullptr;
    if (sched == nullptr) {
      // A Python thread that never ran tasklets has none to report.
      if (is_id && python_thread_exists(id)) return Py_BuildValue("(OOi)", Py_None, Py_None, 0);
      PyErr_SetString(PyExc_RuntimeError, "Thread id not found");
      return nullptr;
    }
  }
  return Py_BuildValue("(OOi)", as_object(sched->main()), as_object(sched->current_tasklet()),
                       sched->runcount());
}

bool as_bool(PyObject* value, bool fallback, bool* out) {
  if (value == nullptr) {
    *out = fallback;
    return true;
  }
  int flag = PyObject_IsTrue(value);
  if (flag < 0) return false;
  *out = flag != 0;
  return true;
}

// A timeout in microseconds, as Stackless parses its ticks ("l": an int or an
// object with __index__, with CPython's TypeError otherwise); none when not
// given, None, or not positive (Stackless interrupts only for timeout > 0).
bool as_ticks(PyObject* value, int64_t* out) {
  *out = 0;
  if (value == nullptr || value == Py_None) return true;
  long long ticks = PyLong_AsLongLong(value);
  if (ticks == -1 && PyErr_Occurred()) return false;
  *out = std::max<long long>(ticks, 0);
  return true;
}

PyObject* run(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* p[5];
  // Stackless parses run()'s arguments under the name run_watchdog, and its errors say so.
  if (!parse_arguments("run_watchdog", args, nargs, kwnames,
                       {"timeout", "threadblock", "soft", "ignore_nesting", "totaltimeout"}, 0, p)) {
    return nullptr;
  }
  Scheduler::RunOptions options;
  // ignore_nesting lets Stackless interrupt tasklets nested in C calls; every
  // tasklet here can be interrupted between bytecodes, so it is only checked.
  bool ignore_nesting = false;
  if (!as_ticks(p[0], &options.timeout_us) || !as_bool(p[1], false, &options.threadblock) ||
      !as_bool(p[2], false, &options.soft) || !as_bool(p[3], false, &ignore_nesting)) {
    return nullptr;
  }
  if (p[4] != nullptr && PyBool_Check(p[4])) {
    // Stackless's totaltimeout is a flag: `timeout` is then the total for the
    // run (a number is ours: a total of its own beside the per-tasklet timeout).
    if (p[4] == Py_True) options.totaltimeout_us = std::exchange(options.timeout_us, 0);
  } else if (!as_ticks(p[4], &options.totaltimeout_us)) {
    return nullptr;
  }
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  sched->set_call_sp(stack_top(args, nargs, kwnames));
  return sched->run_watchdog(options);
}

PyObject* schedule_impl(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, const char* name,
                        bool remove) {
  PyObject* retval = nullptr;
  if (!parse_arguments(name, args, nargs, kwnames, {"retval"}, 0, &retval)) return nullptr;
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  if (retval == nullptr) retval = as_object(sched->current_tasklet());
  sched->set_call_sp(stack_top(args, nargs, kwnames));
  return sched->schedule(remove, retval);
}

PyObject* schedule(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return schedule_impl(args, nargs, kwnames, "schedule", false);
}

PyObject* schedule_remove(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return schedule_impl(args, nargs, kwnames, "schedule_remove", true);
}

PyObject* enable_softswitch(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* flag;
  if (!parse_arguments("stackless.enable_softswitch", args, nargs, kwnames, {"flag"}, 1, &flag)) return nullptr;
  // Every tasklet has its own C stack here: soft switching is off and stays
  // off. The old value is reported (False), as Stackless does, so code that
  // saves and restores it works; a flag that cannot be a bool still fails.
  if (flag != Py_None && PyObject_IsTrue(flag) < 0) return nullptr;
  Py_RETURN_FALSE;
}

// Stackless's pickle flags (bits 0-2 are defined; see its pickle_flags()).
// Tasklets cannot be pickled here (docs/engine.md), so the flags change
// nothing, but they are validated and kept like Stackless's, so code that
// sets and restores them runs unchanged.
constexpr long kPickleFlagsMax = 7;
constexpr long kPreserveTracingState = 1;  // PICKLEFLAGS_PRESERVE_TRACING_STATE
long default_pickle_flags = 0;              // guarded by the GIL
thread_local long thread_pickle_flags = -1;  // -1: this thread has not set its own

PyObject* update_pickle_flags(const char* name, const char* first, PyObject* const* args, Py_ssize_t nargs,
                              PyObject* kwnames, long* flags) {
  PyObject* p[2];
  if (!parse_arguments(name, args, nargs, kwnames, {first, "mask"}, 0, p)) return nullptr;
  long value = p[0] != nullptr ? PyLong_AsLong(p[0]) : -1;
  if (value == -1 && PyErr_Occurred()) return nullptr;
  long mask = p[1] != nullptr ? PyLong_AsLong(p[1]) : -1;
  if (mask == -1 && PyErr_Occurred()) return nullptr;
  if (value < -1 || (value & mask) > kPickleFlagsMax) {
    PyErr_SetString(PyExc_ValueError, "you must not set an undefined pickle-flag");
    return nullptr;
  }
  long old = *flags;
  if (value != -1) *flags = (old & ~mask) | (value & mask);
  return PyLong_FromLong(old);
}

PyObject* pickle_flags_default(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return update_pickle_flags("pickle_flags_default", "new_default", args, nargs, kwnames, &default_pickle_flags);
}

PyObject* pickle_flags(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  // A thread starts with the default of the moment it first asks.
  if (thread_pickle_flags == -1) thread_pickle_flags = default_pickle_flags;
  return update_pickle_flags("pickle_flags", "new_flags", args, nargs, kwnames, &thread_pickle_flags);
}

// sys.setrecursionlimit, wrapped so a tasklet's cap (set by its C stack size)
// holds after the limit changes while it runs.
PyObject* original_setrecursionlimit = nullptr;

PyObject* setrecursionlimit(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  PythonState& state = sched->current_tasklet()->pystate_;
  PyThreadState* tstate = PyThreadState_Get();
  state.drop_recursion_cap(tstate);
  PyObject* result = PyObject_Vectorcall(original_setrecursionlimit, args, nargs, nullptr);
  state.reapply_recursion_cap(tstate);
  return result;
}

PyMethodDef setrecursionlimit_def = {
    "setrecursionlimit", as_cfunction<setrecursionlimit>(),
    METH_FASTCALL,
    "setrecursionlimit(n): set the recursion limit; a tasklet stays capped by its C stack size"};

bool wrap_setrecursionlimit() {
  PyObject* sys = PyImport_ImportModule("sys");
  if (sys == nullptr) return false;
  original_setrecursionlimit = PyObject_GetAttrString(sys, "setrecursionlimit");
  PyObject* wrapper = original_setrecursionlimit != nullptr ? PyCFunction_New(&setrecursionlimit_def, nullptr) : nullptr;
  bool ok = wrapper != nullptr && PyObject_SetAttrString(sys, "setrecursionlimit", wrapper) == 0;
  Py_XDECREF(wrapper);
  Py_DECREF(sys);
  return ok;
}

PyObject* kill_all_at_exit(PyObject*, PyObject*) {
  if (Scheduler* sched = Scheduler::existing()) sched->kill_all_started();
  PyErr_Clear();
  Py_RETURN_NONE;
}

PyMethodDef kill_all_at_exit_def = {"_kill_tasklets_at_exit", as_cfunction<kill_all_at_exit>(), METH_NOARGS,
                                    "kills the main thread's unfinished tasklets at interpreter exit"};

// Stackless kills unfinished tasklets at exit: their finally blocks run, and
// their C stacks are unwound before the interpreter goes away.
bool register_exit_kill() {
  PyObject* atexit = PyImport_ImportModule("atexit");
  if (atexit == nullptr) return false;
  PyObject* function = PyCFunction_New(&kill_all_at_exit_def, nullptr);
  PyObject* result = function != nullptr ? PyObject_CallMethod(atexit, "register", "O", function) : nullptr;
  Py_XDECREF(result);
  Py_XDECREF(function);
  Py_DECREF(atexit);
  return result != nullptr;
}

PyObject* module_getattr(PyObject* module, PyObject* name) {
  const char* key = PyUnicode_AsUTF8(name);
  if (key == nullptr) return nullptr;
  std::string_view attr(key);
  if (attr == "current") return getcurrent(module, nullptr);
  if (attr == "main") return getmain(module, nullptr);
  if (attr == "runcount") return getruncount(module, nullptr);
  if (attr == "threads") return thread_list();
  if (attr == "debug") return getdebug(module, nullptr);
  if (attr == "uncollectables") return getuncollectables(module, nullptr);
  if (attr == "pickle_with_tracing_state") {
    // Deprecated in Stackless for pickle_flags(); tasklets are not pickled
    // here, so it only reports and sets (module_setattro) the flag.
    long flags = thread_pickle_flags == -1 ? default_pickle_flags : thread_pickle_flags;
    return PyBool_FromLong(flags & kPreserveTracingState);
  }
  PyErr_Format(PyExc_AttributeError, "module 'stackless' has no attribute '%U'", name);
  return nullptr;
}

// Assigning stackless.pickle_with_tracing_state sets the flag in this thread's
// pickle flags and in the default, as Stackless's module property does.
int module_setattro(PyObject* module, PyObject* name, PyObject* value) {
  if (value != nullptr && PyUnicode_Check(name) &&
      PyUnicode_CompareWithASCIIString(name, "pickle_with_tracing_state") == 0) {
    int flag = PyObject_IsTrue(value);
    if (flag < 0) return -1;
    if (thread_pickle_flags == -1) thread_pickle_flags = default_pickle_flags;
    long bit = flag != 0 ? kPreserveTracingState : 0;
    thread_pickle_flags = (thread_pickle_flags & ~kPreserveTracingState) | bit;
    default_pickle_flags = (default_pickle_flags & ~kPreserveTracingState) | bit;
    return 0;
  }
  return PyObject_GenericSetAttr(module, name, value);
}

// The module's type: a ModuleType whose one settable computed attribute is
// pickle_with_tracing_state (Stackless makes its module a ModuleType subclass
// with properties for the same reason).
PyTypeObject StacklessModuleType = [] {
  PyTypeObject type{PyVarObject_HEAD_INIT(nullptr, 0)};
  type.tp_name = "stackless.StacklessModuleType";
  type.tp_basicsize = 0;  // PyModule_Type's, inherited
  type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC;
  type.tp_setattro = guarded<module_setattro>;
  return type;
}();

PyMethodDef module_methods[] = {
    {"getcurrent", as_cfunction<getcurrent>(), METH_NOARGS, "getcurrent(): the running tasklet of this thread"},
    {"getcurrentid", as_cfunction<getcurrentid>(), METH_NOARGS,
     "getcurrentid() -- return the id of the currently executing tasklet."},
    {"getmain", as_cfunction<getmain>(), METH_NOARGS, "getmain(): the main tasklet of this thread"},
    {"getdebug", as_cfunction<getdebug>(), METH_NOARGS, "Returns True if this is a DEBUG build"},
    {"getuncollectables", as_cfunction<getuncollectables>(), METH_NOARGS,
     "getuncollectables(): the tasklets with a C stack of their own (started, not finished)"},
    {"getthreads", as_cfunction<getthreads>(), METH_NOARGS,
     "Return a list of all thread ids, starting with main."},
    {"getruncount", as_cfunction<getruncount>(), METH_NOARGS, "getruncount(): runnable tasklets, the running one included"},
    {"get_thread_info", as_cfunction<get_thread_info>(), METH_FASTCALL | METH_KEYWORDS,
     "get_thread_info(thread_id=-1, flags=0): (main, current, runcount) of a thread (-1: this one)"},
    {"run", as_cfunction<run>(), METH_FASTCALL | METH_KEYWORDS,
     "run(timeout=0, threadblock=False, soft=False, ignore_nesting=False, totaltimeout=0): run the "
     "scheduler until nothing is runnable; timeouts in microseconds (1 tick = 1 us)"},
    {"schedule", as_cfunction<schedule>(), METH_FASTCALL | METH_KEYWORDS,
     "schedule(retval=current): let the other runnable tasklets run, then return retval"},
    {"schedule_remove", as_cfunction<schedule_remove>(), METH_FASTCALL | METH_KEYWORDS,
     "schedule_remove(retval=current): leave the runnables queue and switch away"},
    {"enable_softswitch", as_cfunction<enable_softswitch>(), METH_FASTCALL | METH_KEYWORDS,
     "enable_softswitch(flag): accepted for compatibility; soft switching is always off"},
    {"pickle_flags_default", as_cfunction<pickle_flags_default>(), METH_FASTCALL | METH_KEYWORDS,
     "pickle_flags_default(new_default=-1, mask=-1): kept for compatibility; tasklets cannot be pickled"},
    {"pickle_flags", as_cfunction<pickle_flags>(), METH_FASTCALL | METH_KEYWORDS,
     "pickle_flags(new_flags=-1, mask=-1): kept for compatibility; tasklets cannot be pickled"},
    {"__getattr__", as_cfunction<module_getattr>(), METH_O, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

// ---------------------------------------------------------------- atomic

struct Atomic {
  PyObject_HEAD
  int saved;  // -1 outside a with block
};

PyObject* atomic_new(PyTypeObject* type, PyObject* args, PyObject* kwargs) {
  if (!_PyArg_NoPositional("atomic", args) || !_PyArg_NoKeywords("atomic", kwargs)) return nullptr;
  PyObject* self = type->tp_alloc(type, 0);
  if (self != nullptr) reinterpret_cast<Atomic*>(self)->saved = -1;
  return self;
}

PyObject* atomic_enter(PyObject* self, PyObject*) {
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  Tasklet* t = sched->current_tasklet();
  reinterpret_cast<Atomic*>(self)->saved = t->atomic_;
  t->atomic_ = true;
  return Py_NewRef(self);
}

PyObject* atomic_exit(PyObject* self, PyObject*) {
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  auto* a = reinterpret_cast<Atomic*>(self);
  if (a->saved >= 0) sched->current_tasklet()->atomic_ = a->saved != 0;
  a->saved = -1;
  Py_RETURN_FALSE;
}

PyMethodDef atomic_methods[] = {
    {"__enter__", as_cfunction<atomic_enter>(), METH_NOARGS, nullptr},
    {"__exit__", as_cfunction<atomic_exit>(), METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyTypeObject AtomicType = [] {
  PyTypeObject type{PyVarObject_HEAD_INIT(nullptr, 0)};
  type.tp_name = "stackless.atomic";
  type.tp_basicsize = sizeof(Atomic);
  type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE;
  type.tp_doc = "with atomic(): the current tasklet is not preempted inside the block";
  type.tp_new = guarded<atomic_new>;
  type.tp_methods = atomic_methods;
  return type;
}();

// ---------------------------------------------------------------- the module

int create_tasklet_exit(PyObject* module) {
  if (ensure_tasklet_exit() < 0) return -1;
  PyObject* builtins = PyEval_GetBuiltins();
  if (builtins == nullptr || PyDict_SetItemString(builtins, "TaskletExit", TaskletExitError) < 0) return -1;
  return PyModule_AddObjectRef(module, "TaskletExit", TaskletExitError);
}

int add_pickle_flag_names(PyObject* module) {
  if (PyModule_AddIntConstant(module, "PICKLEFLAGS_PRESERVE_TRACING_STATE", 1) < 0 ||
      PyModule_AddIntConstant(module, "PICKLEFLAGS_PRESERVE_AG_FINALIZER", 2) < 0) {
    return -1;
  }
  return PyModule_AddIntConstant(module, "PICKLEFLAGS_RESET_AG_FINALIZER", 4);
}

int set_module_type(PyObject* module) {
  StacklessModuleType.tp_base = &PyModule_Type;
  StacklessModuleType.tp_traverse = PyModule_Type.tp_traverse;  // PyType_Ready wants them before it inherits
  StacklessModuleType.tp_clear = PyModule_Type.tp_clear;
  if (PyType_Ready(&StacklessModuleType) < 0) return -1;
  return PyObject_SetAttrString(module, "__class__", reinterpret_cast<PyObject*>(&StacklessModuleType));
}

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "stackless",
    "Stackless Python 3 compatible tasklets and channels, on fibers with their own C stacks.", -1,
    module_methods, nullptr, nullptr, nullptr, nullptr,
};

}  // namespace
}  // namespace shard::engine

namespace {
PyObject* init_stackless_module() {
  using namespace shard::engine;
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  if (add_type(module, "tasklet", &TaskletType) < 0 || add_type(module, "channel", &ChannelType) < 0 ||
      add_type(module, "atomic", &AtomicType) < 0 || create_tasklet_exit(module) < 0 ||
      PyModule_AddObjectRef(module, "stackless", module) < 0 || add_pickle_flag_names(module) < 0 ||
      add_hook_functions(module) < 0 || set_module_type(module) < 0 || !wrap_setrecursionlimit() ||
      !register_exit_kill()) {
    Py_DECREF(module);
    return nullptr;
  }
  PyObject* all = Py_BuildValue(
      "[ssssssssssssssssssssssssssss]", "atomic", "channel", "tasklet", "getcurrent", "getcurrentid",
      "getmain", "getruncount", "get_thread_info", "getdebug", "getuncollectables", "getthreads", "run",
      "schedule", "schedule_remove", "stackless", "current", "main", "runcount", "threads",
      "pickle_with_tracing_state", "enable_softswitch", "TaskletExit", "set_channel_callback",
      "get_channel_callback", "set_schedule_callback", "get_schedule_callback", "set_error_handler",
      "switch_trap");
  if (all == nullptr || PyModule_AddObject(module, "__all__", all) < 0) {
    Py_XDECREF(all);
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
}  // namespace

extern "C" PyObject* PyInit_stackless() { return shard::engine::guarded<init_stackless_module>(); }
