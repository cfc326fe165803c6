#include "shard/engine/interpreter.h"

#include <climits>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include <Python.h>

#include "bindings/io_hooks.h"
#include "shard/engine/dispatcher.h"
#include "shard/engine/engine_module.h"
#include "shard/engine/stackless_module.h"

namespace shard::engine {
namespace {

bool check(PyStatus status, PyConfig* config) {
  if (!PyStatus_Exception(status)) return true;
  PyConfig_Clear(config);
  if (PyStatus_IsExit(status)) std::exit(status.exitcode);
  Py_ExitStatusException(status);  // prints the error, exits non-zero
  return false;
}

std::string this_binary() {
  std::error_code error;
  std::string path = std::filesystem::canonical("/proc/self/exe", error).string();
  return error ? std::string() : path;
}

// Before the program runs (so ahead of PYTHONPATH, behind the script's own
// directory, which Py_RunMain puts first): scripts_dir, then engine_python_dir,
// then module_python_dirs.
bool put_engine_dirs_on_sys_path(const InterpreterOptions& options) {
  PyObject* path = PySys_GetObject("path");  // borrowed
  if (path == nullptr || !PyList_Check(path)) {
    PyErr_SetString(PyExc_RuntimeError, "sys.path is not a list");
    return false;
  }
  std::vector<const std::string*> dirs;  // each inserted first: in reverse
  for (auto it = options.module_python_dirs.rbegin(); it != options.module_python_dirs.rend(); ++it) dirs.push_back(&*it);
  dirs.push_back(&options.engine_python_dir);
  dirs.push_back(&options.scripts_dir);
  for (const std::string* dir : dirs) {
    PyObject* entry = PyUnicode_DecodeFSDefault(dir->c_str());
    if (entry == nullptr) return false;
    int inserted = PyList_Insert(path, 0, entry);
    Py_DECREF(entry);
    if (inserted < 0) return false;
  }
  return true;
}

// Tasklet sockets (engine/python/tasklet_sockets): the standard library's
// blocking network calls block only their tasklet, unless
// SHARD_TASKLET_SOCKETS=0. It patches modules as they are imported, so it
// comes before the program imports any.
bool start_tasklet_sockets() {
  PyObject* module = PyImport_ImportModule("tasklet_sockets");
  if (module == nullptr) return false;
  PyObject* result = PyObject_CallMethod(module, "install_if_wanted", nullptr);
  Py_DECREF(module);
  const bool installed = result != nullptr;
  Py_XDECREF(result);
  return installed;
}

// The main thread's scheduler and the dispatcher that wakes its tasklets'
// requests, made here on the main thread before any script runs: made on
// first use instead, they would belong to whichever thread made the first
// request. Importing _engine readies the tasklet types first.
bool start_engine() {
  PyObject* engine = PyImport_ImportModule("_engine");
  if (engine == nullptr) return false;
  Py_DECREF(engine);
  return Dispatcher::start() != nullptr && start_engine_io() && start_tasklet_sockets();
}

}  // namespace

int run_python_main(const InterpreterOptions& options, int argc, char** argv) {
  if (PyImport_AppendInittab("stackless", PyInit_stackless) < 0 ||
      PyImport_AppendInittab("_engine", PyInit__engine) < 0) {
    return 1;
  }

  std::vector<char*> args;
  args.push_back(const_cast<char*>(options.program.c_str()));
  for (int i = 0; i < argc; ++i) args.push_back(argv[i]);

#ifdef SHARD_SANITIZE_ADDRESS
  // Python's objects go through malloc, where ASan sees them, whatever the
  // command line says: -E and -I make CPython ignore PYTHONMALLOC, and its own
  // allocator's arenas would hide our use-after-free of an object and show
  // CPython's arena bookkeeping to LeakSanitizer.
  PyPreConfig preconfig;
  PyPreConfig_InitPythonConfig(&preconfig);
  preconfig.parse_argv = 1;
  preconfig.allocator = PYMEM_ALLOCATOR_MALLOC;
  if (PyStatus status = Py_PreInitializeFromBytesArgs(&preconfig, static_cast<Py_ssize_t>(args.size()), args.data());
      PyStatus_Exception(status)) {
    Py_ExitStatusException(status);
  }
#endif
  PyConfig config;
  PyConfig_InitPythonConfig(&config);
  config.parse_argv = 1;
  if (!check(PyConfig_SetBytesArgv(&config, static_cast<Py_ssize_t>(args.size()), args.data()), &config)) return 1;
  std::string executable = options.executable.empty() ? this_binary() : options.executable;
  if (!executable.empty() &&
      !check(PyConfig_SetBytesString(&config, &config.executable, executable.c_str()), &config)) {
    return 1;
  }
  if (!check(Py_InitializeFromConfig(&config), &config)) return 1;
  PyConfig_Clear(&config);
  if (!put_engine_dirs_on_sys_path(options) || !start_engine()) {
    PyErr_Print();
    Py_FinalizeEx();
    return 1;
  }
  return Py_RunMain();
}

}  // namespace shard::engine
