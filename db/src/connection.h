#pragma once
// One Connector/C++ connection and the statements prepared on it, used by one
// database thread only. Turns every Connector exception into a Result: none
// leaves this class.

#include <memory>
#include <string>
#include <unordered_map>

#include "shard/db/config.h"
#include "shard/db/pool.h"

namespace sql {
class Connection;
class Driver;
class PreparedStatement;
}  // namespace sql

namespace shard::db {

// get_driver_instance() is not thread-safe: called once, before any thread starts.
sql::Driver* driver();

// The client's codes for a connection that is gone (the server restarted,
// was stopped, or dropped us): the connection is discarded.
bool is_connection_lost(int code);

class Connection final {
 public:
  explicit Connection(const Config& config);
  ~Connection();

  bool connected() const { return connection_ != nullptr; }
  // Connects if not connected; false with `result` holding the error.
  bool ensure(Result& result);
  // Runs a query or an execute (prepared once per SQL text) or a
  // transaction statement; a lost connection is discarded.
  Result run(const Job& job);
  void disconnect();

 private:
  sql::PreparedStatement* prepared(const std::string& sql);
  void run_statement(const Job& job, Result& result);

  const Config& config_;
  std::unique_ptr<sql::Connection> connection_;
  // Bounded: dynamic SQL texts must not grow it without end.
  std::unordered_map<std::string, std::unique_ptr<sql::PreparedStatement>> statements_;
};

}  // namespace shard::db
