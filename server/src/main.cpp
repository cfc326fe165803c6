// shard: the game-server executable. Subcommands select what this process is.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include "shard/engine/interpreter.h"

namespace {

void usage(std::ostream& out) {
  out << "usage: shard <command> [args...]\n"
         "\n"
         "commands:\n"
         "  python [ARGS...]   the embedded CPython 3.11 with stackless, like python3\n"
         "  run [OPTIONS] SCRIPT [ARGS...]\n"
         "                     run SCRIPT, then the fixed-FPS game loop until SIGINT/SIGTERM\n"
         "                     (shard run --help lists the options)\n"
         "  help               this text\n";
}

std::string scripts_dir() {
  const char* env = std::getenv("SHARD_SCRIPTS_DIR");
  return env != nullptr && *env != '\0' ? env : SHARD_DEFAULT_SCRIPTS_DIR;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    usage(std::cerr);
    return 2;
  }
  std::string command = argv[1];
  const shard::engine::InterpreterOptions interpreter{argv[0], scripts_dir(), SHARD_ENGINE_PYTHON_DIR};
  if (command == "python") return shard::engine::run_python_main(interpreter, argc - 2, argv + 2);
  if (command == "run") {
    // `shard run ...` is `shard python -m shard_run ...`.
    std::vector<char*> args = {const_cast<char*>("-m"), const_cast<char*>("shard_run")};
    args.insert(args.end(), argv + 2, argv + argc);
    return shard::engine::run_python_main(interpreter, static_cast<int>(args.size()), args.data());
  }
  if (command == "help" || command == "--help" || command == "-h") {
    usage(std::cout);
    return 0;
  }
  std::cerr << "shard: unknown command '" << command << "'\n";
  usage(std::cerr);
  return 2;
}
