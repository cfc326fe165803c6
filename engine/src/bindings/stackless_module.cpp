// The `stackless` module: module-level functions, the atomic context manager,
// TaskletExit, and the module attributes computed on access (current, main,
// runcount, threads).
#include "shard/engine/stackless_module.h"

#include "bindings/arguments.h"
#include "shard/engine/channel.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/stackless_errors.h"

namespace shard::engine {

PyObject* TaskletExitError = nullptr;

PyObject* make_exception(PyObject* type, PyObject* value, PyObject* tb) {
  if (value == Py_None) value = nullptr;
  if (tb == Py_None) tb = nullptr;
  if (tb != nullptr && !PyTraceBack_Check(tb)) {
    PyErr_SetString(PyExc_TypeError, "throw() third argument must be a traceback object");
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
      Py_DECREF(exc);
      PyErr_SetString(PyExc_TypeError, "calling the exception class did not give an exception");
      return nullptr;
    }
  } else {
    PyErr_Format(PyExc_TypeError, "exceptions must be classes or instances deriving from BaseException, not %s",
                 Py_TYPE(type)->tp_name);
    return nullptr;
  }
  if (tb != nullptr && PyException_SetTraceback(exc, tb) < 0) {
    Py_DECREF(exc);
    return nullptr;
  }
  return exc;
}

namespace {

PyObject* getcurrent(PyObject*, PyObject*) {
  Scheduler* sched = Scheduler::current();
  return sched != nullptr ? Py_NewRef(as_object(sched->current_tasklet())) : nullptr;
}

PyObject* getmain(PyObject*, PyObject*) {
  Scheduler* sched = Scheduler::current();
  return sched != nullptr ? Py_NewRef(as_object(sched->main())) : nullptr;
}

PyObject* getruncount(PyObject*, PyObject*) {
  Scheduler* sched = Scheduler::current();
  return sched != nullptr ? PyLong_FromLong(sched->runcount()) : nullptr;
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

PyObject* get_thread_info(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* id_arg = nullptr;
  if (!parse_arguments("get_thread_info", args, nargs, kwnames, {"thread_id"}, 0, &id_arg)) return nullptr;
  Scheduler* sched = Scheduler::current();
  if (sched == nullptr) return nullptr;
  if (id_arg != nullptr && id_arg != Py_None) {
    unsigned long id = PyLong_AsUnsignedLong(id_arg);
    if (id == static_cast<unsigned long>(-1) && PyErr_Occurred()) return nullptr;
    sched = Scheduler::for_thread(id);
    if (sched == nullptr) {
      PyErr_Format(PyExc_ValueError, "no thread with id %lu runs tasklets", id);
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

bool as_ticks(PyObject* value, const char* name, int64_t* out) {
  *out = 0;
  if (value == nullptr || value == Py_None || value == Py_False) return true;
  if (!PyLong_Check(value)) {
    PyErr_Format(PyExc_TypeError, "run() %s must be an int (microseconds), not %s", name, Py_TYPE(value)->tp_name);
    return false;
  }
  long long ticks = PyLong_AsLongLong(value);
  if (ticks == -1 && PyErr_Occurred()) return false;
  if (ticks < 0) {
    PyErr_Format(PyExc_ValueError, "run() %s must not be negative", name);
    return false;
  }
  *out = ticks;
  return true;
}

PyObject* run(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* p[5];
  if (!parse_arguments("run", args, nargs, kwnames,
                       {"timeout", "threadblock", "soft", "ignore_nesting", "totaltimeout"}, 0, p)) {
    return nullptr;
  }
  Scheduler::RunOptions options;
  // ignore_nesting lets Stackless interrupt tasklets nested in C calls; every
  // tasklet here can be interrupted between bytecodes, so it is only checked.
  bool ignore_nesting = false;
  if (!as_ticks(p[0], "timeout", &options.timeout_us) || !as_bool(p[1], false, &options.threadblock) ||
      !as_bool(p[2], false, &options.soft) || !as_bool(p[3], false, &ignore_nesting) ||
      !as_ticks(p[4], "totaltimeout", &options.totaltimeout_us)) {
    return nullptr;
  }
  Scheduler* sched = Scheduler::current();
  if (sched == nullptr) return nullptr;
  sched->set_call_sp(stack_top(args, nargs, kwnames));
  return sched->run_watchdog(options);
}

PyObject* schedule_impl(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, const char* name,
                        bool remove) {
  PyObject* retval = nullptr;
  if (!parse_arguments(name, args, nargs, kwnames, {"retval"}, 0, &retval)) return nullptr;
  Scheduler* sched = Scheduler::current();
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
  if (!parse_arguments("enable_softswitch", args, nargs, kwnames, {"flag"}, 1, &flag)) return nullptr;
  // Every tasklet has its own C stack here: there is no soft switching to enable.
  Py_RETURN_FALSE;
}

// sys.setrecursionlimit, wrapped so a tasklet's cap (set by its C stack size)
// holds after the limit changes while it runs.
PyObject* original_setrecursionlimit = nullptr;

PyObject* setrecursionlimit(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  Scheduler* sched = Scheduler::current();
  if (sched == nullptr) return nullptr;
  PythonState& state = sched->current_tasklet()->pystate_;
  PyThreadState* tstate = PyThreadState_Get();
  state.drop_recursion_cap(tstate);
  PyObject* result = PyObject_Vectorcall(original_setrecursionlimit, args, nargs, nullptr);
  state.reapply_recursion_cap(tstate);
  return result;
}

PyMethodDef setrecursionlimit_def = {
    "setrecursionlimit", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(setrecursionlimit)),
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
  if (Scheduler* sched = Scheduler::current()) sched->kill_all_started();
  PyErr_Clear();
  Py_RETURN_NONE;
}

PyMethodDef kill_all_at_exit_def = {"_kill_tasklets_at_exit", kill_all_at_exit, METH_NOARGS,
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
  PyErr_Format(PyExc_AttributeError, "module 'stackless' has no attribute '%U'", name);
  return nullptr;
}

PyMethodDef module_methods[] = {
    {"getcurrent", getcurrent, METH_NOARGS, "getcurrent(): the running tasklet of this thread"},
    {"getmain", getmain, METH_NOARGS, "getmain(): the main tasklet of this thread"},
    {"getruncount", getruncount, METH_NOARGS, "getruncount(): runnable tasklets, the running one included"},
    {"get_thread_info", as_cfunction(get_thread_info), METH_FASTCALL | METH_KEYWORDS,
     "get_thread_info(thread_id=current): (main, current, runcount) of a thread"},
    {"run", as_cfunction(run), METH_FASTCALL | METH_KEYWORDS,
     "run(timeout=0, threadblock=False, soft=False, ignore_nesting=False, totaltimeout=0): run the "
     "scheduler until nothing is runnable; timeouts in microseconds (1 tick = 1 us)"},
    {"schedule", as_cfunction(schedule), METH_FASTCALL | METH_KEYWORDS,
     "schedule(retval=current): let the other runnable tasklets run, then return retval"},
    {"schedule_remove", as_cfunction(schedule_remove), METH_FASTCALL | METH_KEYWORDS,
     "schedule_remove(retval=current): leave the runnables queue and switch away"},
    {"enable_softswitch", as_cfunction(enable_softswitch), METH_FASTCALL | METH_KEYWORDS,
     "enable_softswitch(flag): accepted for compatibility; soft switching is always off"},
    {"__getattr__", module_getattr, METH_O, nullptr},
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
  Scheduler* sched = Scheduler::current();
  if (sched == nullptr) return nullptr;
  Tasklet* t = sched->current_tasklet();
  reinterpret_cast<Atomic*>(self)->saved = t->atomic_;
  t->atomic_ = true;
  return Py_NewRef(self);
}

PyObject* atomic_exit(PyObject* self, PyObject*) {
  Scheduler* sched = Scheduler::current();
  if (sched == nullptr) return nullptr;
  auto* a = reinterpret_cast<Atomic*>(self);
  if (a->saved >= 0) sched->current_tasklet()->atomic_ = a->saved != 0;
  a->saved = -1;
  Py_RETURN_FALSE;
}

PyMethodDef atomic_methods[] = {
    {"__enter__", atomic_enter, METH_NOARGS, nullptr},
    {"__exit__", atomic_exit, METH_VARARGS, nullptr},
    {nullptr, nullptr, 0, nullptr},
};

PyTypeObject AtomicType = [] {
  PyTypeObject type{PyVarObject_HEAD_INIT(nullptr, 0)};
  type.tp_name = "stackless.atomic";
  type.tp_basicsize = sizeof(Atomic);
  type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE;
  type.tp_doc = "with atomic(): the current tasklet is not preempted inside the block";
  type.tp_new = atomic_new;
  type.tp_methods = atomic_methods;
  return type;
}();

// ---------------------------------------------------------------- the module

int create_tasklet_exit(PyObject* module) {
  if (TaskletExitError == nullptr) {
    TaskletExitError = PyErr_NewExceptionWithDoc(
        "builtins.TaskletExit", "Raised in a tasklet to end it silently (kill()); a SystemExit subclass.",
        PyExc_SystemExit, nullptr);
    if (TaskletExitError == nullptr) return -1;
  }
  PyObject* builtins = PyEval_GetBuiltins();
  if (builtins == nullptr || PyDict_SetItemString(builtins, "TaskletExit", TaskletExitError) < 0) return -1;
  return PyModule_AddObjectRef(module, "TaskletExit", TaskletExitError);
}

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "stackless",
    "Stackless Python 3 compatible tasklets and channels, on fibers with their own C stacks.", -1,
    module_methods, nullptr, nullptr, nullptr, nullptr,
};

}  // namespace
}  // namespace shard::engine

extern "C" PyObject* PyInit_stackless() {
  using namespace shard::engine;
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  if (add_type(module, "tasklet", &TaskletType) < 0 || add_type(module, "channel", &ChannelType) < 0 ||
      add_type(module, "atomic", &AtomicType) < 0 || create_tasklet_exit(module) < 0 ||
      PyModule_AddObjectRef(module, "stackless", module) < 0 || !wrap_setrecursionlimit() || !register_exit_kill()) {
    Py_DECREF(module);
    return nullptr;
  }
  PyObject* all = Py_BuildValue("[sssssssssssssssss]", "atomic", "channel", "tasklet", "getcurrent", "getmain",
                                "getruncount", "get_thread_info", "run", "schedule", "schedule_remove",
                                "stackless", "current", "main", "runcount", "threads", "enable_softswitch",
                                "TaskletExit");
  if (all == nullptr || PyModule_AddObject(module, "__all__", all) < 0) {
    Py_XDECREF(all);
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}
