#pragma once
// Taking the current Python error as one exception object.

#include <Python.h>

namespace shard::engine {

// Clears the current error and returns it as a normalized exception instance
// with its traceback attached (a new reference), or null when none is set.
inline PyObject* take_exception() {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  if (type == nullptr) return nullptr;
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb != nullptr && value != nullptr) PyException_SetTraceback(value, tb);
  Py_XDECREF(type);
  Py_XDECREF(tb);
  return value;
}

}  // namespace shard::engine
