#pragma once
// Argument parsing for vectorcall-style (METH_FASTCALL | METH_KEYWORDS)
// functions, with the TypeErrors a builtin gives: positional or keyword by the
// documented parameter name, too many, missing, unknown or duplicate keywords;
// and the glue to put such functions and types into a module.
//
// The messages are CPython's own, so a function reads like the Stackless
// builtin it stands for. `function` is the name they show: the bare name for
// what Stackless parses with PyArg_ParseTupleAndKeywords ("throw"), the
// qualified one for its METH_NOARGS and METH_O methods ("tasklet.run"), as
// CPython names those. No parameters: "takes no arguments (N given)"; exactly
// one, required: "takes exactly one argument (N given)" when called
// positionally.

#include <Python.h>

#include <initializer_list>

#include "core/cxx_boundary.h"

namespace shard::engine {

// Fills out[i] (borrowed; null when not given) for each name.
// `required` leading parameters must be given. Returns false with TypeError set.
bool parse_arguments_slow(const char* function, PyObject* const* args, Py_ssize_t nargs,
                          PyObject* kwnames, std::initializer_list<const char*> names,
                          Py_ssize_t required, PyObject** out);

// The switch points call this on every send and receive: positional calls that
// fit take the inline path.
inline bool parse_arguments(const char* function, PyObject* const* args, Py_ssize_t nargs,
                     PyObject* kwnames, std::initializer_list<const char*> names,
                     Py_ssize_t required, PyObject** out) {
  const auto count = static_cast<Py_ssize_t>(names.size());
  if (kwnames == nullptr && nargs >= required && nargs <= count) {
    for (Py_ssize_t i = 0; i < count; ++i) out[i] = i < nargs ? args[i] : nullptr;
    return true;
  }
  return parse_arguments_slow(function, args, nargs, kwnames, names, required, out);
}

// An argument's type as CPython's "must be int, not X" errors name it.
inline const char* type_name(PyObject* arg) { return arg == Py_None ? "None" : Py_TYPE(arg)->tp_name; }

// Functions go into method tables as as_cfunction<f>() and into getset rows and
// type slots as guarded<f>: behind the one C++/Python error boundary
// (core/cxx_boundary.h).

// Readies a static type and adds it to a module; -1 with an error set on failure.
inline int add_type(PyObject* module, const char* name, PyTypeObject* type) {
  if (PyType_Ready(type) < 0) return -1;
  return PyModule_AddObjectRef(module, name, reinterpret_cast<PyObject*>(type));
}

// The top of the caller's evaluation stack for a vectorcall (see Scheduler::set_call_sp).
inline PyObject* const* stack_top(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return args + nargs + (kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0);
}

}  // namespace shard::engine
