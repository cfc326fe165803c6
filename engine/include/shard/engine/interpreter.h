#pragma once
// The embedded CPython: `shard python ARGS...` behaves like the python3 command
// line (script with argv, -c, -m, -u, stdin, exit status, KeyboardInterrupt),
// with the stackless and _engine modules built in, and the shard's scripts/ and
// the engine's Python modules on sys.path. The
// code runs as the main tasklet of the main thread.

#include <string>
#include <vector>

namespace shard::engine {

struct InterpreterOptions {
  std::string program;  // argv[0] the interpreter reports
  // sys.executable: a program that runs this interpreter with python3's
  // command line (subprocess and multiprocessing start children with it);
  // empty: this binary.
  std::string executable;
  // Both on sys.path, first, also under -E and -I: they are part of the
  // engine, like the standard library, not of the environment.
  std::string scripts_dir;        // game scripts
  std::string engine_python_dir;  // the engine's Python modules (uthread), next
  std::vector<std::string> module_python_dirs;  // other modules' Python halves (db/python), last
};

// Runs the interpreter to completion; returns the process exit status.
int run_python_main(const InterpreterOptions& options, int argc, char** argv);

}  // namespace shard::engine
