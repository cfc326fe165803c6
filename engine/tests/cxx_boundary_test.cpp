// The C++/Python error boundary: what each C++ exception becomes in Python,
// and what each kind of slot returns when one escapes.
#include "core/cxx_boundary.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

namespace shard::engine {
namespace {

class PythonEnvironment final : public ::testing::Environment {
 public:
  void SetUp() override { Py_Initialize(); }
  void TearDown() override { Py_FinalizeEx(); }
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new PythonEnvironment);

PyObject* throws_bad_alloc(PyObject*, PyObject*) { throw std::bad_alloc(); }
PyObject* throws_system_error(PyObject*, PyObject*) {
  throw std::system_error(EAGAIN, std::generic_category(), "creating the widget");
}
PyObject* throws_logic_error(PyObject*, PyObject*) { throw std::logic_error("the widget is upside down"); }
PyObject* throws_an_int(PyObject*, PyObject*) { throw 42; }
PyObject* returns_its_argument(PyObject*, PyObject* arg) { return Py_NewRef(arg); }
PyObject* cannot_throw(PyObject*, PyObject* arg) noexcept { return Py_NewRef(arg); }
int int_slot_throws(PyObject*, PyObject*, void*) { throw std::runtime_error("setter failed"); }
void void_slot_throws(PyObject*) { throw std::runtime_error("dealloc failed"); }

// The pending Python error's type and str(), cleared.
std::pair<PyObject*, std::string> take_error() {
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  PyObject* text = value != nullptr ? PyObject_Str(value) : nullptr;
  std::string str = text != nullptr ? PyUnicode_AsUTF8(text) : "";
  Py_XDECREF(text);
  Py_XDECREF(value);
  Py_XDECREF(tb);
  Py_XDECREF(type);
  return {type, str};
}

TEST(CxxBoundary, BadAllocBecomesMemoryError) {
  EXPECT_EQ(guarded<throws_bad_alloc>(nullptr, nullptr), nullptr);
  EXPECT_EQ(take_error().first, PyExc_MemoryError);
}

TEST(CxxBoundary, SystemErrorBecomesOSErrorWithItsErrnoAndContext) {
  EXPECT_EQ(guarded<throws_system_error>(nullptr, nullptr), nullptr);
  ASSERT_TRUE(PyErr_ExceptionMatches(PyExc_OSError));
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  PyObject* number = PyObject_GetAttrString(value, "errno");
  PyObject* text = PyObject_Str(value);
  EXPECT_EQ(PyLong_AsLong(number), EAGAIN);
  EXPECT_NE(std::string(PyUnicode_AsUTF8(text)).find("creating the widget"), std::string::npos);
  Py_DECREF(text);
  Py_DECREF(number);
  Py_XDECREF(tb);
  Py_DECREF(value);
  Py_DECREF(type);
}

TEST(CxxBoundary, OtherExceptionsBecomeRuntimeErrorWithWhat) {
  EXPECT_EQ(guarded<throws_logic_error>(nullptr, nullptr), nullptr);
  auto [type, text] = take_error();
  EXPECT_EQ(type, PyExc_RuntimeError);
  EXPECT_EQ(text, "the widget is upside down");
  EXPECT_EQ(guarded<throws_an_int>(nullptr, nullptr), nullptr);
  EXPECT_EQ(take_error().first, PyExc_RuntimeError);
}

TEST(CxxBoundary, AnExceptionCarriedFromAnotherThreadIsRaisedWithItsContext) {
  std::exception_ptr failure;
  try {
    throw std::system_error(ECONNREFUSED, std::generic_category(), "connecting");
  } catch (...) {
    failure = std::current_exception();
  }
  capture_exception(failure);
  raise_captured_exception("off-thread request failed");
  auto [type, text] = take_error();
  EXPECT_TRUE(PyErr_GivenExceptionMatches(type, PyExc_OSError));
  EXPECT_NE(text.find("off-thread request failed: connecting"), std::string::npos) << text;
}

TEST(CxxBoundary, TheHappyPathPassesTheResultThrough) {
  PyObject* arg = PyLong_FromLong(7);
  PyObject* result = guarded<returns_its_argument>(nullptr, arg);
  EXPECT_EQ(result, arg);
  EXPECT_FALSE(PyErr_Occurred());
  Py_XDECREF(result);
  Py_DECREF(arg);
}

TEST(CxxBoundary, NoexceptFunctionsAreTheirOwnTrampoline) {
  PyObject* arg = PyLong_FromLong(7);
  PyObject* result = guarded<cannot_throw>(nullptr, arg);
  EXPECT_EQ(result, arg);
  Py_XDECREF(result);
  Py_DECREF(arg);
}

TEST(CxxBoundary, IntSlotsReturnMinusOneWithTheErrorSet) {
  EXPECT_EQ(guarded<int_slot_throws>(nullptr, nullptr, nullptr), -1);
  EXPECT_EQ(take_error().first, PyExc_RuntimeError);
}

TEST(CxxBoundary, VoidSlotsReportUnraisableAndKeepTheErrorAlreadySet) {
  PyErr_SetString(PyExc_KeyError, "already set");
  guarded<void_slot_throws>(nullptr);
  EXPECT_EQ(take_error().first, PyExc_KeyError);
}

TEST(CxxBoundary, MethodTableEntriesRaiseInPython) {
  static PyMethodDef def = {"throws", as_cfunction<throws_logic_error>(), METH_NOARGS, nullptr};
  PyObject* function = PyCFunction_New(&def, nullptr);
  ASSERT_NE(function, nullptr);
  EXPECT_EQ(PyObject_CallNoArgs(function), nullptr);
  auto [type, text] = take_error();
  EXPECT_EQ(type, PyExc_RuntimeError);
  EXPECT_EQ(text, "the widget is upside down");
  Py_DECREF(function);
}

}  // namespace
}  // namespace shard::engine
