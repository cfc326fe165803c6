#include "prefs_module.h"

#include <utility>

#include "core/cxx_boundary.h"

namespace shard::server {
namespace {

NodePrefs& stored() {
  static NodePrefs prefs;
  return prefs;
}

PyObject* to_python(const PrefValue& value) {
  if (const auto* integer = std::get_if<long long>(&value)) return PyLong_FromLongLong(*integer);
  if (const auto* real = std::get_if<double>(&value)) return PyFloat_FromDouble(*real);
  const auto& text = std::get<std::string>(value);
  return PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "strict");
}

// A fresh dict each time: a caller that edits it changes nothing for others.
PyObject* values(PyObject*, PyObject*) {
  PyObject* dict = PyDict_New();
  if (dict == nullptr) return nullptr;
  for (const Pref& pref : stored().values) {
    PyObject* value = to_python(pref.value);
    if (value == nullptr || PyDict_SetItemString(dict, pref.key.c_str(), value) < 0) {
      Py_XDECREF(value);
      Py_DECREF(dict);
      return nullptr;
    }
    Py_DECREF(value);
  }
  return dict;
}

PyMethodDef methods[] = {
    {"values", engine::as_cfunction<values>(), METH_NOARGS, "{section.key: value} of every key of this role"},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_prefs",
                          "This node's configuration: prefs.ini, the environment and the command line, checked.", -1,
                          methods};

PyObject* init() {
  PyObject* module = PyModule_Create(&module_def);
  if (module == nullptr) return nullptr;
  const NodePrefs& prefs = stored();
  if (PyModule_AddStringConstant(module, "role", role_name(prefs.role)) < 0 ||
      PyModule_AddStringConstant(module, "config_path", prefs.config_path.c_str()) < 0) {
    Py_DECREF(module);
    return nullptr;
  }
  return module;
}

}  // namespace

void set_node_prefs(NodePrefs prefs) { stored() = std::move(prefs); }

}  // namespace shard::server

extern "C" PyObject* PyInit__prefs() { return shard::engine::guarded<shard::server::init>(); }
