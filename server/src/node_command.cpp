#include "node_command.h"

#include <malloc.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "prefs_module.h"

namespace shard::server {
namespace {

// Blocks of 1 MiB and more get a mapping of their own, given back to the OS
// when freed. glibc's default threshold moves up to the largest block freed
// (up to 32 MiB): after the first scrypt check (16 MiB, accounts.py) every
// later one came from a worker thread's arena and stayed resident there, the
// arenas growing with the checks that ran at once (1.6 GiB after a burst of
// 200 logins; docs/benchmarks.md, the swarm). A fixed threshold also keeps
// the trim threshold at its 128 KiB, so an arena's free top goes back too.
constexpr int kMmapThreshold = 1 << 20;

}  // namespace

int run_node(Role role, int argc, char** argv, const engine::InterpreterOptions& interpreter) {
  NodeCommand command;
  try {
    command = parse_node_command(role, std::vector<std::string>(argv, argv + argc));
  } catch (const PrefsError& e) {
    std::cerr << "shard " << role_name(role) << ": " << e.what() << "\n(shard " << role_name(role)
              << " --help lists the keys)\n";
    return 2;
  }
  if (command.action == NodeAction::kHelp) {
    print_node_help(role, std::cout);
    return 0;
  }
  if (command.action == NodeAction::kPrintConfig) {
    print_node_prefs(command.prefs, std::cout);
    return 0;
  }
  // The engine starts its IO threads with the interpreter, from the environment.
  for (const Pref& pref : command.prefs.values) {
    if (pref.key == "node.io_threads") setenv("SHARD_IO_THREADS", std::to_string(std::get<long long>(pref.value)).c_str(), 1);
  }
  // Before the interpreter and its threads allocate anything.
  mallopt(M_MMAP_THRESHOLD, kMmapThreshold);
  set_node_prefs(std::move(command.prefs));
  if (PyImport_AppendInittab("_prefs", PyInit__prefs) < 0) return 1;
  // -P: the current directory is not put on sys.path (a stray db.py there
  // must not replace ours).
  std::vector<char*> args = {const_cast<char*>("-P"), const_cast<char*>("-m"), const_cast<char*>("node_main")};
  return engine::run_python_main(interpreter, static_cast<int>(args.size()), args.data());
}

}  // namespace shard::server
