#include "bindings/arguments.h"

#include <cstring>

namespace shard::engine {

bool parse_arguments_slow(const char* function, PyObject* const* args, Py_ssize_t nargs,
                     PyObject* kwnames, std::initializer_list<const char*> names,
                     Py_ssize_t required, PyObject** out) {
  const auto count = static_cast<Py_ssize_t>(names.size());
  Py_ssize_t nkw = kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0;
  if (count == 0) {  // as CPython words it for METH_NOARGS
    if (nkw > 0) {
      PyErr_Format(PyExc_TypeError, "%s() takes no keyword arguments", function);
    } else {
      PyErr_Format(PyExc_TypeError, "%s() takes no arguments (%zd given)", function, nargs);
    }
    return false;
  }
  if (count == 1 && required == 1 && nkw == 0 && nargs != 1) {  // as for METH_O
    PyErr_Format(PyExc_TypeError, "%s() takes exactly one argument (%zd given)", function, nargs);
    return false;
  }
  if (nargs > count) {
    PyErr_Format(PyExc_TypeError, "%s() takes at most %zd argument%s (%zd given)", function, count,
                 count == 1 ? "" : "s", nargs);
    return false;
  }
  for (Py_ssize_t i = 0; i < count; ++i) out[i] = i < nargs ? args[i] : nullptr;
  for (Py_ssize_t k = 0; k < nkw; ++k) {
    const char* key = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, k));
    if (key == nullptr) return false;
    Py_ssize_t index = 0;
    for (const char* name : names) {
      if (std::strcmp(name, key) == 0) break;
      ++index;
    }
    if (index == count) {
      PyErr_Format(PyExc_TypeError, "'%s' is an invalid keyword argument for %s()", key, function);
      return false;
    }
    if (out[index] != nullptr) {
      PyErr_Format(PyExc_TypeError, "argument for %s() given by name ('%s') and position (%zd)", function,
                   key, index + 1);
      return false;
    }
    out[index] = args[nargs + k];
  }
  for (Py_ssize_t i = 0; i < required; ++i) {
    if (out[i] == nullptr) {
      PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s' (pos %zd)", function,
                   names.begin()[i], i + 1);
      return false;
    }
  }
  return true;
}

}  // namespace shard::engine
