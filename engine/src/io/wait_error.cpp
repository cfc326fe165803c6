// The error category of await_completion() and its Python form.
#include <Python.h>

#include <cerrno>
#include <string>

#include "shard/engine/await_completion.h"

namespace shard::engine {
namespace {

class WaitCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "shard.wait"; }
  std::string message(int value) const override {
    switch (static_cast<WaitError>(value)) {
      case WaitError::kInterrupted:
        return "the waiting tasklet was interrupted";
      case WaitError::kTimedOut:
        return "the operation did not complete before its deadline";
      case WaitError::kStopped:
        return "the engine's IO threads are stopped";
      case WaitError::kNoDispatcher:
        return "the engine's dispatcher is not started";
    }
    return "unknown wait error " + std::to_string(value);
  }
  std::error_condition default_error_condition(int value) const noexcept override {
    switch (static_cast<WaitError>(value)) {
      case WaitError::kTimedOut:
        return std::errc::timed_out;
      case WaitError::kStopped:
        return std::errc::operation_canceled;
      default:
        return {value, *this};
    }
  }
};

// The errno of an error an OSError can carry; 0 for others.
int os_errno(std::error_code error) {
  if (error == WaitError::kStopped) return ECANCELED;
  if (error.category() == std::system_category() || error.category() == std::generic_category()) return error.value();
  return 0;
}

}  // namespace

const std::error_category& wait_category() {
  static const WaitCategory category;
  return category;
}

std::nullptr_t raise_wait_error(std::error_code error, const char* what) {
  if (error == WaitError::kInterrupted || error == WaitError::kNoDispatcher) {
    if (!PyErr_Occurred()) PyErr_Format(PyExc_RuntimeError, "%s: %s", what, error.message().c_str());
    return nullptr;
  }
  std::string message = std::string(what) + ": " + error.message();
  if (error == WaitError::kTimedOut) {
    PyErr_SetString(PyExc_TimeoutError, message.c_str());
  } else if (int code = os_errno(error); code != 0) {
    // OSError(errno, text) becomes the errno's subclass (ECANCELED stays OSError).
    PyObject* args = Py_BuildValue("(is)", code, message.c_str());
    if (args != nullptr) PyErr_SetObject(PyExc_OSError, args);
    Py_XDECREF(args);
  } else {
    PyErr_SetString(PyExc_OSError, message.c_str());
  }
  return nullptr;
}

}  // namespace shard::engine
