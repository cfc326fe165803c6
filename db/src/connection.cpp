#include "connection.h"

#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <sstream>

namespace shard::db {
namespace {

constexpr size_t kMaxStatements = 512;
constexpr unsigned int kMaxColumnsOnStack = 32;
constexpr int64_t kIdleCheckNs = 1'000'000'000;  // a ping costs a round trip: only after a pause

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
constexpr int kErrUnknown = 2000;  // CR_UNKNOWN_ERROR

bool starts_with_word(const std::string& sql, const char* word) {
  size_t i = 0;
  while (i < sql.size() && std::isspace(static_cast<unsigned char>(sql[i]))) ++i;
  for (const char* w = word; *w != '\0'; ++w, ++i) {
    if (i >= sql.size() || std::toupper(static_cast<unsigned char>(sql[i])) != *w) return false;
  }
  return true;
}

void bind(sql::PreparedStatement& statement, const std::vector<Value>& params,
          std::vector<std::unique_ptr<std::istringstream>>& blobs) {
  for (size_t n = 0; n < params.size(); ++n) {
    const auto index = static_cast<unsigned int>(n + 1);
    const Value& v = params[n];
    switch (v.kind) {
      case Value::Kind::kNull: statement.setNull(index, sql::DataType::VARCHAR); break;
      // A 32-bit value binds as INT, as a hand-written client would: the
      // server then compares it with an INT key as it is.
      case Value::Kind::kInt:
        if (v.i >= INT32_MIN && v.i <= INT32_MAX) {
          statement.setInt(index, static_cast<int32_t>(v.i));
        } else {
          statement.setInt64(index, v.i);
        }
        break;
      case Value::Kind::kUInt: statement.setUInt64(index, v.u); break;
      case Value::Kind::kDouble: statement.setDouble(index, v.d); break;
      case Value::Kind::kBytes:
        // Bound as a blob: the bytes go to the server as they are, NULs included.
        blobs.push_back(std::make_unique<std::istringstream>(v.s));
        statement.setBlob(index, blobs.back().get());
        break;
      case Value::Kind::kDateTime:
      case Value::Kind::kDate:
      case Value::Kind::kTime: statement.setDateTime(index, v.s); break;
      // Connector/C++ has no setDecimal: the exact text, converted by the server.
      case Value::Kind::kText:
      case Value::Kind::kDecimal: statement.setString(index, sql::SQLString(v.s)); break;
    }
  }
}

// What a column's values become, from the result's metadata: looked up once
// per result, not per value (Connector's getColumnType is not free).
Value::Kind column_kind(sql::ResultSetMetaData& meta, unsigned int column) {
  switch (meta.getColumnType(column)) {
    case sql::DataType::BIT:
    case sql::DataType::TINYINT:
    case sql::DataType::SMALLINT:
    case sql::DataType::MEDIUMINT:
    case sql::DataType::INTEGER:
    case sql::DataType::BIGINT:
    case sql::DataType::YEAR:
      return meta.isSigned(column) ? Value::Kind::kInt : Value::Kind::kUInt;
    case sql::DataType::REAL:
    case sql::DataType::DOUBLE:
      return Value::Kind::kDouble;
    case sql::DataType::DECIMAL:
    case sql::DataType::NUMERIC:
      return Value::Kind::kDecimal;
    case sql::DataType::BINARY:
    case sql::DataType::VARBINARY:
    case sql::DataType::LONGVARBINARY:
    case sql::DataType::GEOMETRY:
      return Value::Kind::kBytes;
    case sql::DataType::TIMESTAMP:
      return Value::Kind::kDateTime;
    case sql::DataType::DATE:
      return Value::Kind::kDate;
    case sql::DataType::TIME:
      return Value::Kind::kTime;
    default:
      return Value::Kind::kText;
  }
}

void read_value(sql::ResultSet& rows, unsigned int column, Value::Kind kind, Value& v) {
  switch (kind) {
    case Value::Kind::kInt: v.i = rows.getInt64(column); break;
    case Value::Kind::kUInt: v.u = rows.getUInt64(column); break;
    case Value::Kind::kDouble: v.d = static_cast<double>(rows.getDouble(column)); break;  // long double in 1.1
    default: v.s = rows.getString(column); break;
  }
  v.kind = rows.wasNull() ? Value::Kind::kNull : kind;
}

}  // namespace

sql::Driver* driver() {
  static sql::Driver* instance = get_driver_instance();
  return instance;
}

bool is_connection_lost(int code) {
  switch (code) {
    case 2002:  // CR_CONNECTION_ERROR: the server is not there
    case 2003:  // CR_CONN_HOST_ERROR
    case 2006:  // CR_SERVER_GONE_ERROR
    case 2013:  // CR_SERVER_LOST
    case 2055:  // CR_SERVER_LOST_EXTENDED
    case 1927:  // ER_CONNECTION_KILLED
    case 4031:  // ER_CLIENT_INTERACTION_TIMEOUT
      return true;
    default:
      return false;
  }
}

Connection::Connection(const Config& config, int io_timeout_s) : config_(config), io_timeout_s_(io_timeout_s) {}

Connection::~Connection() { disconnect(); }

void Connection::disconnect() {
  id_.store(0, std::memory_order_release);
  statements_.clear();  // before their connection
  try {
    if (connection_ != nullptr) connection_->close();
  } catch (const std::exception&) {
    // Closing a dead connection may complain; it is dropped either way.
  }
  connection_.reset();
}

bool Connection::ensure(Result& result) {
  if (connection_ != nullptr) return true;
  try {
    sql::ConnectOptionsMap options;
    if (!config_.socket.empty()) {
      options["hostName"] = sql::SQLString("localhost");
      options["socket"] = sql::SQLString(config_.socket);
    } else {
      options["hostName"] = sql::SQLString("tcp://" + config_.host);
      options["port"] = config_.port;
    }
    options["userName"] = sql::SQLString(config_.user);
    options["password"] = sql::SQLString(config_.password);
    options["schema"] = sql::SQLString(config_.database);
    options["OPT_CONNECT_TIMEOUT"] = config_.connect_timeout_s;
    options["OPT_RECONNECT"] = false;
    options["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
    if (!config_.ssl_ca.empty() || !config_.ssl_cert.empty() || !config_.ssl_key.empty()) {
      options["sslEnforce"] = true;  // no silent fallback to a plain connection
      if (!config_.ssl_ca.empty()) {
        options["sslCA"] = sql::SQLString(config_.ssl_ca);
        options["sslVerify"] = true;
      }
      if (!config_.ssl_cert.empty()) options["sslCert"] = sql::SQLString(config_.ssl_cert);
      if (!config_.ssl_key.empty()) options["sslKey"] = sql::SQLString(config_.ssl_key);
    }
    if (io_timeout_s_ > 0) {
      options["OPT_READ_TIMEOUT"] = io_timeout_s_;
      options["OPT_WRITE_TIMEOUT"] = io_timeout_s_;
    }
    connection_.reset(driver()->connect(options));
    // One round trip per connection: Connector/C++ 1.1 does not tell it.
    std::unique_ptr<sql::Statement> statement(connection_->createStatement());
    std::unique_ptr<sql::ResultSet> id(statement->executeQuery("SELECT CONNECTION_ID()"));
    if (id->next()) id_.store(id->getUInt64(1), std::memory_order_release);
    return true;
  } catch (const sql::SQLException& e) {
    result.error = e.getErrorCode() != 0 ? e.getErrorCode() : 2002;
    result.sqlstate = e.getSQLState();
    result.message = std::string("cannot connect to the database: ") + e.what();
  } catch (const std::exception& e) {
    result.error = 2002;
    result.message = std::string("cannot connect to the database: ") + e.what();
  }
  connection_.reset();
  return false;
}

bool Connection::alive() {
  try {
    return connection_->isValid();  // a ping; automatic reconnect is off
  } catch (const std::exception&) {
    return false;
  }
}

sql::PreparedStatement* Connection::prepared(const std::string& sql) {
  auto found = statements_.find(sql);
  if (found != statements_.end()) return found->second.get();
  if (statements_.size() >= kMaxStatements) statements_.clear();
  std::unique_ptr<sql::PreparedStatement> statement(connection_->prepareStatement(sql));
  return statements_.emplace(sql, std::move(statement)).first->second.get();
}

void Connection::run_statement(const Job& job, Result& result) {
  switch (job.op) {
    case Op::kBegin:
    case Op::kCommit:
    case Op::kRollback: {
      static const char* const kText[] = {nullptr, nullptr, "START TRANSACTION", "COMMIT", "ROLLBACK"};
      std::unique_ptr<sql::Statement> statement(connection_->createStatement());
      statement->execute(kText[static_cast<int>(job.op)]);
      return;
    }
    case Op::kQuery: {
      sql::PreparedStatement* statement = prepared(job.sql);
      std::vector<std::unique_ptr<std::istringstream>> blobs;
      bind(*statement, job.params, blobs);
      std::unique_ptr<sql::ResultSet> rows(statement->executeQuery());
      sql::ResultSetMetaData* meta = rows->getMetaData();  // owned by the result set
      const unsigned int columns = meta->getColumnCount();
      if (job.column_names) {
        result.columns.reserve(columns);
        for (unsigned int c = 1; c <= columns; ++c) result.columns.emplace_back(meta->getColumnLabel(c));
      }
      Value::Kind kinds[kMaxColumnsOnStack];
      std::vector<Value::Kind> many;  // a wider result than the stack array
      Value::Kind* kind = kinds;
      if (columns > kMaxColumnsOnStack) kind = (many.resize(columns), many.data());
      for (unsigned int c = 1; c <= columns; ++c) kind[c - 1] = column_kind(*meta, c);
      result.rows.reserve(rows->rowsCount());
      while (rows->next()) {
        Row& row = result.rows.emplace_back(columns);
        for (unsigned int c = 1; c <= columns; ++c) read_value(*rows, c, kind[c - 1], row[c - 1]);
      }
      return;
    }
    case Op::kExecute: {
      sql::PreparedStatement* statement = prepared(job.sql);
      std::vector<std::unique_ptr<std::istringstream>> blobs;
      bind(*statement, job.params, blobs);
      result.affected = static_cast<uint64_t>(statement->executeUpdate());
      if (starts_with_word(job.sql, "INSERT") || starts_with_word(job.sql, "REPLACE")) {
        std::unique_ptr<sql::ResultSet> id(prepared("SELECT LAST_INSERT_ID()")->executeQuery());
        if (id->next()) result.insert_id = id->getUInt64(1);
      }
      return;
    }
  }
}

Result Connection::run(const Job& job, bool check_idle) {
  Result result;
  const int64_t now = steady_ns();
  if (check_idle && connection_ != nullptr && now - last_used_ns_ > kIdleCheckNs && !alive()) disconnect();
  last_used_ns_ = now;
  if (!ensure(result)) return result;
  try {
    run_statement(job, result);
    return result;
  } catch (const sql::SQLException& e) {
    result = Result{};
    result.error = e.getErrorCode() != 0 ? e.getErrorCode() : kErrUnknown;
    result.sqlstate = e.getSQLState();
    result.message = e.what();
  } catch (const std::exception& e) {
    result = Result{};
    result.error = kErrUnknown;
    result.message = e.what();
  }
  if (is_connection_lost(result.error)) disconnect();
  return result;
}

}  // namespace shard::db
