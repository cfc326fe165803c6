// shard: the game-server executable. Subcommands select what this process is.
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "shard/engine/interpreter.h"

namespace {

void usage(std::ostream& out) {
  out << "usage: shard <command> [args...]\n"
         "\n"
         "commands:\n"
         "  python [ARGS...]   the embedded CPython 3.11 with stackless, like python3\n"
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
  if (command == "python") {
    return shard::engine::run_python_main({argv[0], scripts_dir(), SHARD_ENGINE_PYTHON_DIR}, argc - 2, argv + 2);
  }
  if (command == "help" || command == "--help" || command == "-h") {
    usage(std::cout);
    return 0;
  }
  std::cerr << "shard: unknown command '" << command << "'\n";
  usage(std::cerr);
  return 2;
}
