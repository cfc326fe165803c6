#pragma once
// A node's configuration: `shard proxy|sol [--config prefs.ini] [--KEY VALUE...]`.
// Every key has a default, may be set in the INI file (`key = value` under a
// `[section]`, the key's name being section.key) and on the command line
// (`--section.key VALUE`); the database keys also from SHARD_DB_* and
// node.io_threads from SHARD_IO_THREADS. The first of command line,
// environment, file, default wins. Values are checked here, before the
// interpreter starts: a bad one is a PrefsError naming the key.
// docs/cluster.md lists the keys; `--help` prints them with their defaults.

#include <iosfwd>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace shard::server {

enum class Role { kProxy, kSol };
const char* role_name(Role role);

// Typed as the key says: integers, reals (seconds, fractions) or text.
using PrefValue = std::variant<long long, double, std::string>;

struct Pref {
  std::string key;  // section.key
  PrefValue value;
};

struct NodePrefs {
  Role role = Role::kSol;
  std::string config_path;  // empty: no file
  std::vector<Pref> values;  // every key, in the order --help lists them
};

enum class NodeAction { kRun, kHelp, kPrintConfig };

struct NodeCommand {
  NodeAction action = NodeAction::kRun;
  NodePrefs prefs;
};

// The configuration is wrong; what() names the key (or the file) and why.
class PrefsError final : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses `args` (after the role's name); throws PrefsError.
NodeCommand parse_node_command(Role role, const std::vector<std::string>& args);

// Every key of this role with its default and what it does.
void print_node_help(Role role, std::ostream& out);

// The values in force, as an INI file that reproduces them.
void print_node_prefs(const NodePrefs& prefs, std::ostream& out);

}  // namespace shard::server
