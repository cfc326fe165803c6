// shard: the game-server executable. Subcommands select what this process is.
// Started as `shard-python` (a symlink beside it), it is `shard python`.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <system_error>
#include <vector>

#include "console_module.h"
#include "movement_module.h"
#include "net_module.h"
#include "node_command.h"
#include "shard/db/python_module.h"
#include "shard/engine/interpreter.h"
#include "shard/engine/terminate_handler.h"

namespace {

constexpr const char* kPythonEntry = "shard-python";

void usage(std::ostream& out) {
  out << "usage: shard <command> [args...]\n"
         "\n"
         "commands:\n"
         "  python [ARGS...]   the embedded CPython 3.11 with stackless, like python3\n"
         "                     (also: shard-python [ARGS...], which sys.executable names)\n"
         "  run [OPTIONS] SCRIPT [ARGS...]\n"
         "                     run SCRIPT, then the fixed-FPS game loop until SIGINT/SIGTERM\n"
         "                     (shard run --help lists the options)\n"
         "  proxy [--config prefs.ini] [--KEY VALUE...]\n"
         "                     a proxy node: clients' port, routes to sols from the cluster directory\n"
         "  sol [--config prefs.ini] [--KEY VALUE...]\n"
         "                     a sol node: hosts the solar systems the directory assigns it\n"
         "                     (shard proxy|sol --help lists the keys; docs/cluster.md)\n"
         "  console [--node HOST:PORT] [--json] COMMAND [ARGS...]\n"
         "                     a node's admin console: stats, strategy, fps, budget, tasklets, kill,\n"
         "                     profile, exec, logs, audit (shard console --help; docs/console.md)\n"
         "  help               this text\n";
}

std::string scripts_dir() {
  const char* env = std::getenv("SHARD_SCRIPTS_DIR");
  return env != nullptr && *env != '\0' ? env : SHARD_DEFAULT_SCRIPTS_DIR;
}

// sys.executable: the python-style entry beside this binary, so that children
// started as `sys.executable -E -c ...` get this engine. Without it (a copy of
// the binary alone), the binary itself.
std::string python_executable() {
  std::error_code error;
  std::filesystem::path self = std::filesystem::canonical("/proc/self/exe", error);
  if (error) return {};
  std::filesystem::path entry = self.parent_path() / kPythonEntry;
  return std::filesystem::exists(entry, error) ? entry.string() : self.string();
}

bool started_as_python(const char* argv0) {
  return std::filesystem::path(argv0).filename() == kPythonEntry;
}

}  // namespace

int main(int argc, char** argv) {
  // Before any thread exists: an abort then says where and why.
  shard::engine::install_terminate_handler();
  // The modules of the layers above the engine, built in like _engine.
  if (PyImport_AppendInittab("_net", PyInit__net) < 0 || PyImport_AppendInittab("_db", PyInit__db) < 0 ||
      PyImport_AppendInittab("_movement", PyInit__movement) < 0 ||
      PyImport_AppendInittab("_console", PyInit__console) < 0) {
    return 1;
  }
  const shard::engine::InterpreterOptions interpreter{argv[0], python_executable(), scripts_dir(),
                                                      SHARD_ENGINE_PYTHON_DIR,
                                                      {SHARD_DB_PYTHON_DIR, SHARD_SERVER_PYTHON_DIR,
                                                       SHARD_NETPROTO_PYTHON_DIR, SHARD_CONSOLE_PYTHON_DIR}};
  if (started_as_python(argv[0])) return shard::engine::run_python_main(interpreter, argc - 1, argv + 1);
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  std::string command = argv[1];
  if (command == "python") return shard::engine::run_python_main(interpreter, argc - 2, argv + 2);
  if (command == "run") {
    // `shard run ...` is `shard python -m shard_run ...`.
    std::vector<char*> args = {const_cast<char*>("-m"), const_cast<char*>("shard_run")};
    args.insert(args.end(), argv + 2, argv + argc);
    return shard::engine::run_python_main(interpreter, static_cast<int>(args.size()), args.data());
  }
  if (command == "console") {
    // `shard console ...` is `shard python -P -m console_cli ...` (-P: no stray module from the current directory).
    std::vector<char*> args = {const_cast<char*>("-P"), const_cast<char*>("-m"), const_cast<char*>("console_cli")};
    args.insert(args.end(), argv + 2, argv + argc);
    return shard::engine::run_python_main(interpreter, static_cast<int>(args.size()), args.data());
  }
  if (command == "proxy") return shard::server::run_node(shard::server::Role::kProxy, argc - 2, argv + 2, interpreter);
  if (command == "sol") return shard::server::run_node(shard::server::Role::kSol, argc - 2, argv + 2, interpreter);
  if (command == "help" || command == "--help" || command == "-h") {
    usage(std::cout);
    return 0;
  }
  std::cerr << "shard: unknown command '" << command << "'\n";
  usage(std::cerr);
  return 2;
}
