#include "node_prefs.h"

#include <boost/asio/ip/address.hpp>
#include <boost/program_options.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <memory>
#include <ostream>
#include <sstream>
#include <string_view>

#include "shard/engine/dispatcher.h"

namespace shard::server {
namespace {

namespace po = boost::program_options;

enum class Kind { kText, kInteger, kReal, kAddress, kChoice };
enum RoleMask : unsigned { kProxyOnly = 1, kSolOnly = 2, kAnyRole = 3 };

struct KeySpec {
  std::string key;  // section.key
  Kind kind;
  std::string fallback;  // the default, as it would be written in the file
  std::string help;
  unsigned roles = kAnyRole;
  double min = 0, max = 0;  // numbers: inclusive bounds
  std::vector<std::string> choices = {};
};

std::vector<std::string> strategy_names() {
  std::vector<std::string> names;
  for (int i = 0; i < engine::kStrategies; ++i) names.emplace_back(engine::strategy_name(static_cast<engine::Strategy>(i)));
  return names;
}

// Every key, grouped by section in the order --help prints them. The defaults
// run a node on one machine against ops/mariadb.sh's kind of server; a
// deployment sets the addresses (docs/cluster.md).
const std::vector<KeySpec>& key_specs() {
  static const std::vector<KeySpec> specs = {
      {"node.name", Kind::kText, "",
       "this node's name, unique among live nodes (empty: <role>-<host>-<pid>)"},
      {"node.log_level", Kind::kChoice, "info", "the least severe messages logged (stderr)", kAnyRole, 0, 0,
       {"debug", "info", "warning", "error"}},
      {"node.io_threads", Kind::kInteger, "2", "IO threads (Asio io_contexts; SHARD_IO_THREADS)", kAnyRole, 1, 64},
      {"loop.fps", Kind::kReal, "30", "game loop frames per second", kAnyRole, 1, 1000},
      {"loop.strategy", Kind::kChoice, "main_loop", "how a completed IO or database request wakes its tasklet",
       kAnyRole, 0, 0, strategy_names()},
      {"loop.run_budget", Kind::kReal, "0.5", "the scheduler phase's soft budget, a fraction of the frame", kAnyRole,
       0.01, 1},
      {"loop.long_run_ms", Kind::kReal, "50",
       "a tasklet running this long without switching is logged, with its traceback; 0: off", kAnyRole, 0, 60000},
      {"cluster.heartbeat_interval", Kind::kReal, "1",
       "seconds between this node's heartbeats in the cluster directory", kAnyRole, 0.05, 3600},
      {"cluster.node_timeout", Kind::kReal, "10",
       "seconds without a heartbeat after which any node marks another gone (at least 2 heartbeat intervals)",
       kAnyRole, 0.1, 86400},
      {"console.address", Kind::kAddress, "127.0.0.1",
       "numeric IP the admin console (web page, JSON API, WebSocket) listens on (docs/console.md)"},
      {"console.port", Kind::kInteger, "-1", "the admin console's HTTP port; -1: off; 0: any free port (logged)",
       kAnyRole, -1, 65535},
      {"console.password_file", Kind::kText, "",
       "console accounts as name:role:hash lines; empty: the database's accounts with a console_role"},
      {"console.tls_cert", Kind::kText, "",
       "serve the console over TLS with this PEM certificate chain (e.g. the node's proxy.tls_cert); empty: plain"},
      {"console.tls_key", Kind::kText, "", "the console's TLS private key, PEM"},
      {"console.session_idle", Kind::kReal, "1800", "seconds a console session lasts without a request", kAnyRole,
       10, 86400},
      {"console.metrics_address", Kind::kAddress, "127.0.0.1", "numeric IP of the Prometheus /metrics port"},
      {"console.metrics_port", Kind::kInteger, "-1",
       "the Prometheus /metrics port (answers without a session: keep it on a monitoring network); -1: off",
       kAnyRole, -1, 65535},
      {"db.host", Kind::kText, "127.0.0.1", "database server host (SHARD_DB_HOST)"},
      {"db.port", Kind::kInteger, "3306", "database server port (SHARD_DB_PORT)", kAnyRole, 1, 65535},
      {"db.socket", Kind::kText, "", "unix socket, used instead of host and port when set (SHARD_DB_SOCKET)"},
      {"db.user", Kind::kText, "shard", "database user (SHARD_DB_USER)"},
      {"db.password_file", Kind::kText, "",
       "file holding the password; empty: none (SHARD_DB_PASSWORD_FILE)"},
      {"db.database", Kind::kText, "shard", "database name (SHARD_DB_DATABASE)"},
      {"db.pool_size", Kind::kInteger, "4", "database threads = connections (SHARD_DB_POOL_SIZE)", kAnyRole, 1, 256},
      {"db.connect_timeout", Kind::kInteger, "5", "seconds per connection attempt (SHARD_DB_CONNECT_TIMEOUT)",
       kAnyRole, 1, 3600},
      {"sol.address", Kind::kAddress, "127.0.0.1", "numeric IP the node port listens on (proxies connect to it)",
       kSolOnly},
      {"sol.port", Kind::kInteger, "26001", "the node port; 0: any free port (the one taken is registered)", kSolOnly,
       0, 65535},
      {"sol.advertise", Kind::kText, "",
       "numeric IP registered for other nodes to reach this one (empty: sol.address; needed when that is 0.0.0.0 or ::)",
       kSolOnly},
      {"sol.movement_update_interval", Kind::kReal, "1",
       "seconds between a client's movement updates: each neighbour's latest state, back to back in one write "
       "(0: every tick)",
       kSolOnly, 0, 60},
      {"proxy.address", Kind::kAddress, "127.0.0.1", "numeric IP the client port listens on", kProxyOnly},
      {"proxy.port", Kind::kInteger, "26000", "the client port; 0: any free port (the one taken is registered)",
       kProxyOnly, 0, 65535},
      {"proxy.advertise", Kind::kText, "",
       "numeric IP registered for clients (empty: proxy.address; needed when that is 0.0.0.0 or ::)", kProxyOnly},
      {"proxy.routes_refresh", Kind::kReal, "1",
       "seconds between readings of the routes (which sol hosts which system) and reconnections to sols", kProxyOnly,
       0.05, 3600},
      {"proxy.connect_timeout", Kind::kReal, "5", "seconds per connection attempt to a sol", kProxyOnly, 0.1, 600},
      {"proxy.tls", Kind::kChoice, "required",
       "TLS on the client port: required (plain clients refused), optional, off", kProxyOnly, 0, 0,
       {"required", "optional", "off"}},
      {"proxy.tls_cert", Kind::kText, "", "the client port's certificate chain, PEM (ops/devcert.sh makes a dev one)",
       kProxyOnly},
      {"proxy.tls_key", Kind::kText, "", "the client port's private key, PEM", kProxyOnly},
      {"proxy.login_timeout", Kind::kReal, "10", "seconds a new client has to send its login", kProxyOnly, 0.1, 600},
      {"proxy.login_window", Kind::kReal, "60", "seconds over which login attempts are counted (throttling)",
       kProxyOnly, 1, 86400},
      {"proxy.logins_per_address", Kind::kInteger, "20", "login attempts one IP address may make per window",
       kProxyOnly, 1, 1000000},
      {"proxy.failures_per_account", Kind::kInteger, "5", "failed logins one account may take per window",
       kProxyOnly, 1, 1000000},
      {"proxy.password_checks", Kind::kInteger, "0",
       "password checks (scrypt, ~50 ms of a core each) run at once; 0: half the CPUs (at least 1)", kProxyOnly, 0,
       256},
      {"proxy.login_queue", Kind::kInteger, "200",
       "logins that may wait for a password check; more are refused with a retry time", kProxyOnly, 0, 100000},
  };
  return specs;
}

unsigned mask_of(Role role) { return role == Role::kProxy ? kProxyOnly : kSolOnly; }

std::string section_of(const std::string& key) { return key.substr(0, key.find('.')); }

po::options_description generic_options() {
  po::options_description generic("command line only");
  generic.add_options()("help,h", "this text")("config,c", po::value<std::string>()->value_name("FILE"),
                                                "the INI file to read (keys as [section] key = value)")(
      "print-config", "print the values in force (as an INI file) and exit");
  return generic;
}

std::string range_text(const KeySpec& spec) {
  std::ostringstream out;
  out << spec.min << ".." << spec.max;
  return out.str();
}

std::string choices_text(const KeySpec& spec) {
  std::string list;
  for (const std::string& choice : spec.choices) list += (list.empty() ? "" : ", ") + choice;
  return list;
}

// The keys of `roles`, a group per section. Values stay text until checked.
po::options_description key_options(unsigned roles) {
  po::options_description all;
  std::string section;
  std::unique_ptr<po::options_description> group;
  for (const KeySpec& spec : key_specs()) {
    if ((spec.roles & roles) == 0) continue;
    if (section_of(spec.key) != section) {
      if (group) all.add(*group);
      section = section_of(spec.key);
      group = std::make_unique<po::options_description>("[" + section + "]");
    }
    std::string help = spec.help;
    if (spec.kind == Kind::kInteger || spec.kind == Kind::kReal) help += " (" + range_text(spec) + ")";
    if (spec.kind == Kind::kChoice) help += " (" + choices_text(spec) + ")";
    group->add_options()(spec.key.c_str(),
                         po::value<std::string>()->value_name("V")->default_value(
                             spec.fallback, spec.fallback.empty() ? "\"\"" : spec.fallback),
                         help.c_str());
  }
  if (group) all.add(*group);
  return all;
}

// The environment's names for keys: SHARD_DB_HOST -> db.host, as db.py reads
// them, and the engine's SHARD_IO_THREADS.
std::string key_of_variable(const std::string& name) {
  if (name == "SHARD_IO_THREADS") return "node.io_threads";
  constexpr std::string_view kDb = "SHARD_DB_";
  if (name.compare(0, kDb.size(), kDb) != 0) return {};
  std::string key = "db.";
  for (char c : name.substr(kDb.size())) key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const KeySpec& spec : key_specs()) {
    if (spec.key == key) return key;
  }
  return {};
}

[[noreturn]] void bad_value(const KeySpec& spec, const std::string& text, const std::string& why) {
  throw PrefsError(spec.key + ": '" + text + "' " + why);
}

template <typename T>
T parse_number(const KeySpec& spec, const std::string& text, const char* what) {
  T value{};
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size()) {
    bad_value(spec, text, std::string("is not ") + what + " (" + range_text(spec) + ")");
  }
  // Written so that NaN, which from_chars accepts, is out of every range.
  if (!(value >= spec.min && value <= spec.max)) bad_value(spec, text, "is out of range (" + range_text(spec) + ")");
  return value;
}

bool numeric_ip(const std::string& text, bool* unspecified) {
  boost::system::error_code error;
  auto address = boost::asio::ip::make_address(text, error);
  if (error) return false;
  *unspecified = address.is_unspecified();
  return true;
}

PrefValue checked_value(const KeySpec& spec, const std::string& text) {
  switch (spec.kind) {
    case Kind::kInteger:
      return parse_number<long long>(spec, text, "an integer");
    case Kind::kReal:
      return parse_number<double>(spec, text, "a number");
    case Kind::kAddress: {
      bool unspecified = false;
      if (!numeric_ip(text, &unspecified)) bad_value(spec, text, "is not a numeric IP address");
      return text;
    }
    case Kind::kChoice:
      for (const std::string& choice : spec.choices) {
        if (choice == text) return text;
      }
      bad_value(spec, text, "is not one of: " + choices_text(spec));
    case Kind::kText:
      break;
  }
  return text;
}

const PrefValue& value_of(const NodePrefs& prefs, const std::string& key) {
  for (const Pref& pref : prefs.values) {
    if (pref.key == key) return pref.value;
  }
  throw std::logic_error("no key " + key);
}

// What one key's check cannot see: relations between keys.
void check_together(const NodePrefs& prefs) {
  double interval = std::get<double>(value_of(prefs, "cluster.heartbeat_interval"));
  double timeout = std::get<double>(value_of(prefs, "cluster.node_timeout"));
  if (timeout < 2 * interval) {
    std::ostringstream why;
    why << "cluster.node_timeout: " << timeout << " s is under 2 heartbeat intervals (cluster.heartbeat_interval = "
        << interval << " s): a late heartbeat would mark a live node gone";
    throw PrefsError(why.str());
  }
  const std::string role = role_name(prefs.role);
  const auto& address = std::get<std::string>(value_of(prefs, role + ".address"));
  const auto& advertise = std::get<std::string>(value_of(prefs, role + ".advertise"));
  bool unspecified = false;
  if (advertise.empty()) {
    numeric_ip(address, &unspecified);
    if (unspecified) {
      throw PrefsError(role + ".advertise: must be set when " + role + ".address is " + address +
                       " (the address other nodes use to reach this one)");
    }
  } else if (!numeric_ip(advertise, &unspecified) || unspecified) {
    throw PrefsError(role + ".advertise: '" + advertise + "' is not a numeric IP address others can reach");
  }
}

void store_file(const std::string& path, const po::options_description& keys, po::variables_map& vm) {
  std::ifstream file(path);
  if (!file) throw PrefsError(path + ": cannot read: " + std::strerror(errno));
  try {
    po::store(po::parse_config_file(file, keys, false), vm);
  } catch (const po::error& e) {
    throw PrefsError(path + ": " + e.what());
  }
}

}  // namespace

const char* role_name(Role role) { return role == Role::kProxy ? "proxy" : "sol"; }

NodeCommand parse_node_command(Role role, const std::vector<std::string>& args) {
  // Both roles' keys are known to both, so one prefs.ini can serve a machine
  // running proxies and sols; --help lists this role's.
  po::options_description keys = key_options(kAnyRole);
  po::options_description command_line;
  command_line.add(generic_options()).add(keys);
  po::variables_map vm;
  NodeCommand command;
  command.prefs.role = role;
  try {
    // No positional arguments: an empty description makes one an error.
    po::store(po::command_line_parser(args).options(command_line).positional({}).run(), vm);
    po::store(po::parse_environment(keys, key_of_variable), vm);
  } catch (const po::error& e) {
    throw PrefsError(e.what());
  }
  if (vm.count("help")) {
    command.action = NodeAction::kHelp;
    return command;
  }
  if (vm.count("config")) {
    command.prefs.config_path = vm["config"].as<std::string>();
    store_file(command.prefs.config_path, keys, vm);
  }
  if (vm.count("print-config")) command.action = NodeAction::kPrintConfig;
  for (const KeySpec& spec : key_specs()) {
    if ((spec.roles & mask_of(role)) == 0) continue;  // the other role's: ignored
    command.prefs.values.push_back({spec.key, checked_value(spec, vm[spec.key].as<std::string>())});
  }
  check_together(command.prefs);
  return command;
}

void print_node_help(Role role, std::ostream& out) {
  const std::string name = role_name(role);
  const std::string other = role == Role::kProxy ? "sol" : "proxy";
  out << "usage: shard " << name << " [--config prefs.ini] [--section.key VALUE...]\n\n"
      << (role == Role::kProxy
              ? "A proxy node: clients connect to its client port; it routes them to the sol nodes it learns\n"
                "from the cluster directory.\n\n"
              : "A sol node: hosts the solar systems the cluster directory assigns it; proxies connect to its\n"
                "node port.\n\n")
      << "Each key is read from the command line, then the environment (db.* from SHARD_DB_*,\n"
         "node.io_threads from SHARD_IO_THREADS), then the file, then its default: the first found wins.\n"
         "In the file, key `section.key` is written `key = value` under `[section]`; `#` starts a\n"
         "comment. Keys of ["
      << other << "] are accepted and ignored (shard " << other << " --help). See docs/cluster.md.\n\n"
      << generic_options() << "\n"
      << key_options(mask_of(role));
}

void print_node_prefs(const NodePrefs& prefs, std::ostream& out) {
  out << "# shard " << role_name(prefs.role) << ": the values in force"
      << (prefs.config_path.empty() ? "" : " (file " + prefs.config_path + ")") << "\n";
  std::string section;
  for (const Pref& pref : prefs.values) {
    std::string key_section = section_of(pref.key);
    if (key_section != section) {
      section = key_section;
      out << "\n[" << section << "]\n";
    }
    out << pref.key.substr(section.size() + 1) << " =";
    if (const auto* text = std::get_if<std::string>(&pref.value); text != nullptr && text->empty()) {
      out << "\n";
      continue;
    }
    out << " ";
    std::visit(
        [&out](const auto& value) {
          if constexpr (std::is_same_v<std::decay_t<decltype(value)>, double>) {
            char text[32];
            auto end = std::to_chars(text, text + sizeof text, value).ptr;  // shortest round-trip form
            out.write(text, end - text);
          } else {
            out << value;
          }
        },
        pref.value);
    out << "\n";
  }
}

}  // namespace shard::server
