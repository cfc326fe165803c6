#include "connection.h"

#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>

#include <cctype>
#include <chrono>
#include <mutex>
#include <sstream>

namespace shard::db {
namespace {

constexpr size_t kMaxStatements = 512;
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
      case Value::Kind::kInt: statement.setInt64(index, v.i); break;
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

Value read_value(sql::ResultSet& rows, sql::ResultSetMetaData& meta, unsigned int column) {
  Value v;
  switch (meta.getColumnType(column)) {
    case sql::DataType::BIT:
    case sql::DataType::TINYINT:
    case sql::DataType::SMALLINT:
    case sql::DataType::MEDIUMINT:
    case sql::DataType::INTEGER:
    case sql::DataType::BIGINT:
    case sql::DataType::YEAR:
      if (meta.isSigned(column)) {
        v.i = rows.getInt64(column);
        v.kind = Value::Kind::kInt;
      } else {
        v.u = rows.getUInt64(column);
        v.kind = Value::Kind::kUInt;
      }
      break;
    case sql::DataType::REAL:
    case sql::DataType::DOUBLE:
      v.d = static_cast<double>(rows.getDouble(column));  // long double in 1.1
      v.kind = Value::Kind::kDouble;
      break;
    case sql::DataType::DECIMAL:
    case sql::DataType::NUMERIC:
      v.s = rows.getString(column);
      v.kind = Value::Kind::kDecimal;
      break;
    case sql::DataType::BINARY:
    case sql::DataType::VARBINARY:
    case sql::DataType::LONGVARBINARY:
    case sql::DataType::GEOMETRY:
      v.s = rows.getString(column);
      v.kind = Value::Kind::kBytes;
      break;
    case sql::DataType::TIMESTAMP:
      v.s = rows.getString(column);
      v.kind = Value::Kind::kDateTime;
      break;
    case sql::DataType::DATE:
      v.s = rows.getString(column);
      v.kind = Value::Kind::kDate;
      break;
    case sql::DataType::TIME:
      v.s = rows.getString(column);
      v.kind = Value::Kind::kTime;
      break;
    default:
      v.s = rows.getString(column);
      v.kind = Value::Kind::kText;
      break;
  }
  if (rows.wasNull()) v = Value{};
  return v;
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

Connection::Connection(const Config& config) : config_(config) {}

Connection::~Connection() { disconnect(); }

void Connection::disconnect() {
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
    connection_.reset(driver()->connect(options));
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
      for (unsigned int c = 1; c <= columns; ++c) result.columns.emplace_back(meta->getColumnLabel(c));
      while (rows->next()) {
        Row row;
        row.reserve(columns);
        for (unsigned int c = 1; c <= columns; ++c) row.push_back(read_value(*rows, *meta, c));
        result.rows.push_back(std::move(row));
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
