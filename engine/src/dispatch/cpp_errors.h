#pragma once
// Turning a C++ exception into a Python one at the boundary (GIL held).

#include <Python.h>

#include <exception>

namespace shard::engine {

// Sets the Python error for `failure`, prefixed with what was being done:
// std::system_error -> OSError(errno, message), std::bad_alloc -> MemoryError,
// anything else -> RuntimeError.
void set_python_error(const std::exception_ptr& failure, const char* context);

}  // namespace shard::engine
