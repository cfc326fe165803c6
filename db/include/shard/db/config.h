#pragma once
// Where the pool connects, and how many connections it keeps. Production
// points at any MySQL/MariaDB server; the tests at ops/mariadb.sh's private
// one (docs/database.md lists the settings and their SHARD_DB_* names).

#include <string>

namespace shard::db {

struct Config {
  std::string host = "127.0.0.1";
  int port = 3306;
  std::string socket;          // a unix socket path: used instead of host:port when set
  std::string user = "shard";
  std::string password;        // read from a password file by the caller, never from a command line
  std::string database = "shard";
  int pool_size = 4;           // database threads, one connection each
  int connect_timeout_s = 5;
  // TLS: any of these set requires it. With a CA, the server's certificate
  // is verified against it (and its name against the host); cert and key
  // are the client's own, for users created REQUIRE X509.
  std::string ssl_ca;
  std::string ssl_cert;
  std::string ssl_key;
};

}  // namespace shard::db
