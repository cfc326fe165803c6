#include "core/cxx_boundary.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <new>
#include <system_error>

namespace shard::engine {
namespace {

enum class Kind { kNoMemory, kOsError, kOther };

struct Captured {
  Kind kind = Kind::kOther;
  int error_number = 0;
  char what[512] = "";
};

thread_local Captured captured;

void keep(Kind kind, const char* what, int error_number = 0) noexcept {
  captured.kind = kind;
  captured.error_number = error_number;
  std::snprintf(captured.what, sizeof captured.what, "%s", what);
}

}  // namespace

void capture_current_exception() noexcept {
  try {
    throw;
  } catch (const std::bad_alloc& e) {
    keep(Kind::kNoMemory, e.what());
  } catch (const std::system_error& e) {
    const std::error_category& category = e.code().category();
    bool errno_code = category == std::generic_category() || category == std::system_category();
    keep(errno_code ? Kind::kOsError : Kind::kOther, e.what(), e.code().value());
  } catch (const std::exception& e) {
    keep(Kind::kOther, e.what());
  } catch (...) {
    keep(Kind::kOther, "an unknown C++ exception");
  }
}

void capture_exception(const std::exception_ptr& failure) noexcept {
  try {
    std::rethrow_exception(failure);
  } catch (...) {
    capture_current_exception();
  }
}

void raise_captured_exception(const char* context) noexcept {
  if (context != nullptr) {
    // Cut to the buffer (the context first); an encoding error leaves the message as it was.
    char text[sizeof captured.what];
    if (std::snprintf(text, sizeof text, "%s: %s", context, captured.what) >= 0) {
      std::memcpy(captured.what, text, sizeof text);
    }
  }
  switch (captured.kind) {
    case Kind::kNoMemory:
      PyErr_NoMemory();
      return;
    case Kind::kOsError: {
      // OSError(errno, text) picks the errno's subclass, as PyErr_SetFromErrno does.
      PyObject* args = Py_BuildValue("(is)", captured.error_number, captured.what);
      if (args != nullptr) PyErr_SetObject(PyExc_OSError, args);
      Py_XDECREF(args);
      return;
    }
    case Kind::kOther:
      PyErr_SetString(PyExc_RuntimeError, captured.what);
      return;
  }
}

const char* captured_exception_text() noexcept { return captured.what; }

void report_captured_exception() noexcept {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  raise_captured_exception();
  PyErr_WriteUnraisable(nullptr);
  PyErr_Restore(type, value, tb);
}

}  // namespace shard::engine
