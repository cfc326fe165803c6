#include "core/switch_hooks.h"

#include <utility>

#include "core/python_errors.h"

namespace shard::engine::hooks {

namespace {

thread_local bool in_callback = false;

// The switch trap raised for the duration of a callback (see the header).
struct TrapWhileCalling {
  TrapWhileCalling() {
    adjust_switch_trap(1);
    in_callback = true;
  }
  ~TrapWhileCalling() {
    adjust_switch_trap(-1);
    in_callback = false;
  }
  TrapWhileCalling(const TrapWhileCalling&) = delete;
  TrapWhileCalling& operator=(const TrapWhileCalling&) = delete;
};

PyObject* or_none(Tasklet* t) { return t != nullptr ? as_object(t) : Py_None; }

}  // namespace

int adjust_switch_trap(int change) noexcept {
  int old = switch_trap;
  switch_trap = old + change;
  switch_hooks_in_use += (switch_trap != 0) - (old != 0);
  return old;
}

PyObject* exchange_schedule_callback(PyObject* callback) noexcept {
  PyObject* old = std::exchange(schedule_callback, callback);
  switch_hooks_in_use += (callback != nullptr) - (old != nullptr);
  return old;
}

void call_schedule_callback(Tasklet* prev, Tasklet* next) noexcept {
  PyObject* callback = schedule_callback;
  if (callback == nullptr) return;
  Py_INCREF(callback);  // the callback may replace itself
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyObject* result;
  {
    TrapWhileCalling trap;
    PyObject* args[] = {or_none(prev), or_none(next)};
    result = PyObject_Vectorcall(callback, args, 2, nullptr);
  }
  if (result == nullptr) {
    PyObject* where = PyUnicode_FromString("Error in scheduling callback");
    PyErr_WriteUnraisable(where != nullptr ? where : Py_None);
    Py_XDECREF(where);
    PyErr_Clear();
  }
  Py_XDECREF(result);
  Py_DECREF(callback);
  PyErr_Restore(type, value, traceback);
}

bool call_channel_callback(PyObject* channel, Tasklet* tasklet, bool sending, bool willblock) noexcept {
  PyObject* callback = channel_callback;
  if (callback == nullptr) return true;
  if (in_callback) {
    PyErr_SetString(PyExc_RuntimeError, "Recursive channel call due to callbacks!");
    return false;
  }
  Py_INCREF(callback);
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyObject* result;
  {
    TrapWhileCalling trap;
    result = PyObject_CallFunction(callback, "(OOii)", channel, as_object(tasklet), sending ? 1 : 0,
                                   willblock ? 1 : 0);
  }
  if (result == nullptr) PyErr_Clear();  // Stackless drops it
  Py_XDECREF(result);
  Py_DECREF(callback);
  PyErr_Restore(type, value, traceback);
  return true;
}

bool call_error_handler(PyObject** error) noexcept {
  PyObject* handler = error_handler;
  Py_INCREF(handler);  // the handler may replace itself
  PyObject* exc = *error;
  *error = nullptr;
  PyObject* traceback = PyException_GetTraceback(exc);
  PyObject* result = PyObject_CallFunction(handler, "(OOO)", reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc,
                                           traceback != nullptr ? traceback : Py_None);
  Py_XDECREF(traceback);
  Py_DECREF(exc);
  Py_DECREF(handler);
  if (result != nullptr) {
    Py_DECREF(result);
    return true;
  }
  *error = take_exception();
  return false;
}

}  // namespace shard::engine::hooks
