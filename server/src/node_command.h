#pragma once
// `shard proxy ...` and `shard sol ...`: the configuration is parsed and checked
// here (node_prefs.h), then the node runtime runs in the interpreter
// (`-m node_main`, server/python/), reading it from `_prefs`.

#include "node_prefs.h"
#include "shard/engine/interpreter.h"

namespace shard::server {

// Exit status: 0 after a clean stop (SIGINT/SIGTERM), 2 for a bad
// configuration, else what the runtime returns.
int run_node(Role role, int argc, char** argv, const engine::InterpreterOptions& interpreter);

}  // namespace shard::server
