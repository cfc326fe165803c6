#include "shard/engine/tasklet_exit.h"

namespace shard::engine {

PyObject* TaskletExitError = nullptr;

int ensure_tasklet_exit() {
  if (TaskletExitError != nullptr) return 0;
  TaskletExitError = PyErr_NewExceptionWithDoc(
      "builtins.TaskletExit", "Raised in a tasklet to end it silently (kill()); a SystemExit subclass.",
      PyExc_SystemExit, nullptr);
  return TaskletExitError != nullptr ? 0 : -1;
}

}  // namespace shard::engine
