#pragma once
// Argument parsing for vectorcall-style (METH_FASTCALL | METH_KEYWORDS)
// functions, with the TypeErrors a builtin gives: positional or keyword by the
// documented parameter name, too many, missing, unknown or duplicate keywords.

#include <Python.h>

#include <initializer_list>

namespace shard::engine {

// Fills out[i] (borrowed; left untouched when not given) for each name.
// `required` leading parameters must be given. Returns false with TypeError set.
bool parse_arguments(const char* function, PyObject* const* args, Py_ssize_t nargs,
                     PyObject* kwnames, std::initializer_list<const char*> names,
                     Py_ssize_t required, PyObject** out);

// The top of the caller's evaluation stack for a vectorcall (see Scheduler::set_call_sp).
inline PyObject* const* stack_top(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return args + nargs + (kwnames != nullptr ? PyTuple_GET_SIZE(kwnames) : 0);
}

}  // namespace shard::engine
