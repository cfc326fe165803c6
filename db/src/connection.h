#pragma once
// One Connector/C++ connection and the statements prepared on it, used by one
// database thread only. Turns every Connector exception into a Result: none
// leaves this class.

#include <atomic>
#include <cstdint>
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
  // io_timeout_s > 0: a read or write on the socket gives up after it (2013).
  explicit Connection(const Config& config, int io_timeout_s = 0);
  ~Connection();

  bool connected() const { return connection_ != nullptr; }
  // The server's id of this connection (CONNECTION_ID()), 0 while there is
  // none: what KILL QUERY names. Read by the pool's killer thread, hence atomic.
  uint64_t id() const { return id_.load(std::memory_order_acquire); }
  // Connects if not connected; false with `result` holding the error.
  bool ensure(Result& result);
  // Runs a query or an execute (prepared once per SQL text) or a
  // transaction statement; a lost connection is discarded. With
  // `check_idle`, a connection idle for over a second is pinged first and
  // made again if dead (the server restarted meanwhile), so that a statement
  // is not sent into a connection known to be stale. Never inside a
  // transaction: a new connection would silently run it outside.
  Result run(const Job& job, bool check_idle);
  void disconnect();

 private:
  bool alive();
  sql::PreparedStatement* prepared(const std::string& sql);
  void run_statement(const Job& job, Result& result);

  const Config& config_;
  const int io_timeout_s_;
  std::unique_ptr<sql::Connection> connection_;
  int64_t last_used_ns_ = 0;
  std::atomic<uint64_t> id_{0};
  // Bounded: dynamic SQL texts must not grow it without end.
  std::unordered_map<std::string, std::unique_ptr<sql::PreparedStatement>> statements_;
};

}  // namespace shard::db
