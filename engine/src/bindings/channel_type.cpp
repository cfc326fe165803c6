// The Python face of Channel: stackless.channel.
#include <new>

#include "bindings/arguments.h"
#include "shard/engine/channel.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/stackless_errors.h"

namespace shard::engine {
namespace {

bool enter_switch_point(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return false;
  sched->set_call_sp(stack_top(args, nargs, kwnames));
  return true;
}

// Stackless's channel() takes and ignores any arguments (its __init__ is
// object's, which lets them pass when __new__ is overridden).
PyObject* channel_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  Channel* ch = as_channel(self);
  if (ch != nullptr) {
    ch->weakrefs_ = nullptr;
    new (&ch->queue_) TaskletRing();
    ch->balance_ = 0;
    ch->preference_ = -1;
    ch->schedule_all_ = false;
    ch->closing_ = false;
  }
  return self;
}

int channel_traverse(PyObject* self, visitproc visit, void* arg) {
  Channel* ch = as_channel(self);
  int failed = 0;
  ch->queue_.for_each([&](Tasklet* t) {
    if (failed == 0) failed = visit(as_object(t), arg);
  });
  return failed;
}

// Waiting tasklets of a channel that is going away are killed, as Stackless does:
// nothing could ever wake them.
int channel_clear(PyObject* self) {
  Channel* ch = as_channel(self);
  while (!ch->queue_.empty()) {
    Tasklet* t = ch->queue_.head();
    PyObject* exc = PyObject_CallNoArgs(TaskletExitError);
    if (exc == nullptr) {  // out of memory: it can only leave the queue
      PyErr_Clear();
      Py_DECREF(channel_unblock(t));
      continue;
    }
    Py_XSETREF(t->pending_exc_, exc);
    channel_release(t);  // a tasklet of an ended thread just leaves the queue
  }
  return 0;
}

void channel_dealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);
  Channel* ch = as_channel(self);
  if (ch->weakrefs_ != nullptr) PyObject_ClearWeakRefs(self);
  channel_clear(self);
  Py_TYPE(self)->tp_free(self);
}

PyObject* channel_send(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* value;
  if (!parse_arguments("channel.send", args, nargs, kwnames, {"value"}, 1, &value)) return nullptr;
  if (!enter_switch_point(args, nargs, kwnames)) return nullptr;
  return channel_action(as_channel(self), Direction::kSend, value, false);
}

PyObject* channel_receive(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  if (!parse_arguments("channel.receive", args, nargs, kwnames, {}, 0, nullptr)) return nullptr;
  if (!enter_switch_point(args, nargs, kwnames)) return nullptr;
  return channel_action(as_channel(self), Direction::kReceive, nullptr, false);
}

PyObject* send_exception_instance(PyObject* self, PyObject* exc, PyObject* const* args,
                                  Py_ssize_t nargs, PyObject* kwnames) {
  if (exc == nullptr) return nullptr;
  if (!enter_switch_point(args, nargs, kwnames)) {
    Py_DECREF(exc);
    return nullptr;
  }
  PyObject* result = channel_action(as_channel(self), Direction::kSend, exc, true);
  Py_DECREF(exc);
  return result;
}

PyObject* channel_send_exception(PyObject* self, PyObject* const* args, Py_ssize_t nargs,
                                 PyObject* kwnames) {
  PyObject* exc = exception_from_class(args, nargs, kwnames, "channel.send_exception", "send_exception");
  return send_exception_instance(self, exc, args, nargs, kwnames);
}

PyObject* channel_send_throw(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* parsed[3];
  if (kwnames == nullptr && (nargs < 1 || nargs > 3)) {  // as PyArg_UnpackTuple words it for Stackless
    PyErr_Format(PyExc_TypeError, "send_throw expected at %s %d argument%s, got %zd", nargs < 1 ? "least" : "most",
                 nargs < 1 ? 1 : 3, nargs < 1 ? "" : "s", nargs);
    return nullptr;
  }
  if (!parse_arguments("send_throw", args, nargs, kwnames, {"exc", "val", "tb"}, 1, parsed)) return nullptr;
  return send_exception_instance(self, make_exception(parsed[0], parsed[1], parsed[2]), args, nargs, kwnames);
}

PyObject* channel_send_sequence(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* seq;
  if (!parse_arguments("channel.send_sequence", args, nargs, kwnames, {"seq"}, 1, &seq)) return nullptr;
  PyObject* iterator = PyObject_GetIter(seq);
  if (iterator == nullptr) return nullptr;
  Py_ssize_t count = 0;
  while (PyObject* item = PyIter_Next(iterator)) {
    PyObject* result = channel_action(as_channel(self), Direction::kSend, item, false);
    Py_DECREF(item);
    if (result == nullptr) {
      Py_DECREF(iterator);
      return nullptr;
    }
    Py_DECREF(result);
    ++count;
  }
  Py_DECREF(iterator);
  if (PyErr_Occurred()) return nullptr;
  return PyLong_FromSsize_t(count);
}

PyObject* channel_close(PyObject* self, PyObject*) {
  as_channel(self)->closing_ = true;
  Py_RETURN_NONE;
}

PyObject* channel_open(PyObject* self, PyObject*) {
  as_channel(self)->closing_ = false;
  Py_RETURN_NONE;
}

PyObject* channel_iter(PyObject* self) { return Py_NewRef(self); }

PyObject* channel_iternext(PyObject* self) {
  Channel* ch = as_channel(self);
  if (ch->closed()) return nullptr;  // StopIteration
  if (Scheduler::current_or_create() == nullptr) return nullptr;
  return channel_action(ch, Direction::kReceive, nullptr, false);
}

PyObject* get_balance(PyObject* self, void*) { return PyLong_FromLong(as_channel(self)->balance_); }
PyObject* get_queue(PyObject* self, void*) {
  Tasklet* head = as_channel(self)->queue_.head();
  return head != nullptr ? Py_NewRef(as_object(head)) : Py_NewRef(Py_None);
}
PyObject* get_closing(PyObject* self, void*) { return PyBool_FromLong(as_channel(self)->closing_); }
PyObject* get_closed(PyObject* self, void*) { return PyBool_FromLong(as_channel(self)->closed()); }
PyObject* get_preference(PyObject* self, void*) { return PyLong_FromLong(as_channel(self)->preference_); }
int set_preference(PyObject* self, PyObject* value, void*) {
  if (value == nullptr) {
    PyErr_SetString(PyExc_TypeError, "cannot delete preference");
    return -1;
  }
  if (!PyLong_Check(value)) {
    PyErr_SetString(PyExc_TypeError, "preference must be set to an integer");
    return -1;
  }
  long pref = PyLong_AsLong(value);
  if (pref == -1 && PyErr_Occurred()) return -1;
  as_channel(self)->preference_ = pref > 0 ? 1 : (pref < 0 ? -1 : 0);
  return 0;
}
PyObject* get_schedule_all(PyObject* self, void*) { return PyLong_FromLong(as_channel(self)->schedule_all_); }
int set_schedule_all(PyObject* self, PyObject* value, void*) {
  if (value == nullptr) {
    PyErr_SetString(PyExc_TypeError, "cannot delete schedule_all");
    return -1;
  }
  if (!PyLong_Check(value)) {
    // Stackless's text names `preference` here, a slip copied from the setter above.
    PyErr_SetString(PyExc_TypeError, "schedule_all must be set to a bool or integer");
    return -1;
  }
  int flag = PyObject_IsTrue(value);
  if (flag < 0) return -1;
  as_channel(self)->schedule_all_ = flag != 0;
  return 0;
}

PyMethodDef channel_methods[] = {
    {"send", as_cfunction<channel_send>(),
     METH_FASTCALL | METH_KEYWORDS, "send(value): send value over the channel, blocking until received"},
    {"receive", as_cfunction<channel_receive>(),
     METH_FASTCALL | METH_KEYWORDS, "receive(): receive a value, blocking until one is sent"},
    {"send_exception", as_cfunction<channel_send_exception>(),
     METH_FASTCALL | METH_KEYWORDS, "send_exception(exc, *args): the receiver raises exc(*args)"},
    {"send_throw", as_cfunction<channel_send_throw>(),
     METH_FASTCALL | METH_KEYWORDS, "send_throw(exc, val=None, tb=None): the receiver raises, like raise"},
    {"send_sequence", as_cfunction<channel_send_sequence>(),
     METH_FASTCALL | METH_KEYWORDS, "send_sequence(seq): send each item; returns how many"},
    {"close", as_cfunction<channel_close>(), METH_NOARGS, "close(): no further blocking operations; closed once balance is 0"},
    {"open", as_cfunction<channel_open>(), METH_NOARGS, "open(): reopen a closing or closed channel"},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef channel_getset[] = {
    {"balance", guarded<get_balance>, nullptr, "waiting senders (>0) or receivers (<0)", nullptr},
    {"queue", guarded<get_queue>, nullptr, "the first waiting tasklet, or None", nullptr},
    {"closing", guarded<get_closing>, nullptr, "close() was called", nullptr},
    {"closed", guarded<get_closed>, nullptr, "closing and nobody waits", nullptr},
    {"preference", guarded<get_preference>, guarded<set_preference>,
     "-1: the receiver runs first, 0: no switch, 1: the sender runs first", nullptr},
    {"schedule_all", guarded<get_schedule_all>, guarded<set_schedule_all>, "every operation schedules away", nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

}  // namespace

PyTypeObject ChannelType = [] {
  PyTypeObject type{PyVarObject_HEAD_INIT(nullptr, 0)};
  type.tp_name = "stackless.channel";
  type.tp_basicsize = sizeof(Channel);
  type.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC;
  type.tp_doc = "channel(): a rendezvous point for tasklets to exchange values";
  type.tp_new = guarded<channel_new>;
  type.tp_dealloc = guarded<channel_dealloc>;
  type.tp_traverse = channel_traverse;
  type.tp_clear = channel_clear;
  type.tp_iter = guarded<channel_iter>;
  type.tp_iternext = guarded<channel_iternext>;
  type.tp_methods = channel_methods;
  type.tp_getset = channel_getset;
  type.tp_weaklistoffset = offsetof(Channel, weakrefs_);
  return type;
}();

}  // namespace shard::engine
