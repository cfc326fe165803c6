#include "dispatch/cpp_errors.h"

#include <new>
#include <string>
#include <system_error>

namespace shard::engine {

void set_python_error(const std::exception_ptr& failure, const char* context) {
  try {
    std::rethrow_exception(failure);
  } catch (const std::system_error& e) {
    std::string message = std::string(context) + ": " + e.what();
    PyObject* exc = PyObject_CallFunction(PyExc_OSError, "is", e.code().value(), message.c_str());
    if (exc != nullptr) {
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(exc)), exc);
      Py_DECREF(exc);
    }
  } catch (const std::bad_alloc&) {
    PyErr_Format(PyExc_MemoryError, "%s: out of memory", context);
  } catch (const std::exception& e) {
    PyErr_Format(PyExc_RuntimeError, "%s: %s", context, e.what());
  } catch (...) {
    PyErr_Format(PyExc_RuntimeError, "%s: unknown C++ exception", context);
  }
}

}  // namespace shard::engine
