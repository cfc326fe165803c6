// The plain C++ peer of the database benchmark (docs/benchmarks.md, "The
// database"): THREADS threads, each with its own Connector/C++ connection and
// one prepared primary-key SELECT, querying as fast as they can for SECONDS
// (after one warm-up second). The same query, rows and server as the pool's
// tasklets in tools/bench/db_bench.py, over the same transport
// (db_bench_transport.h). Prints one JSON line: queries/s, and the client's
// and the server's CPU per query.
//
//   db_select_loop SERVER_DIR THREADS SECONDS ROWS    (SERVER_DIR: ops/mariadb.sh's)
#include <cppconn/driver.h>
#include <cppconn/exception.h>
#include <cppconn/prepared_statement.h>
#include <cppconn/resultset.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <ctime>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "db_bench_transport.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Shared {
  sql::ConnectOptionsMap options;
  int rows = 0;
  std::atomic<bool> measuring{false};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> queries{0};
  std::atomic<uint64_t> errors{0};
};

void run_thread(sql::Driver* driver, Shared& shared, unsigned seed) {
  driver->threadInit();
  try {
    std::unique_ptr<sql::Connection> connection(driver->connect(shared.options));
    std::unique_ptr<sql::PreparedStatement> select(
        connection->prepareStatement("SELECT id, name, value FROM bench_kv WHERE id = ?"));
    std::minstd_rand random(seed);
    std::uniform_int_distribution<int> id(1, shared.rows);
    uint64_t counted = 0;
    int64_t checksum = 0;  // the row is read, as a caller would
    while (!shared.stop.load(std::memory_order_relaxed)) {
      select->setInt(1, id(random));
      std::unique_ptr<sql::ResultSet> rows(select->executeQuery());
      while (rows->next()) checksum += rows->getInt(1) + static_cast<int64_t>(rows->getString(2).length()) + rows->getInt64(3);
      if (shared.measuring.load(std::memory_order_relaxed)) ++counted;
    }
    shared.queries += counted;
    if (checksum == 0) shared.errors += 1;  // every id exists: a zero sum is a broken run
  } catch (const sql::SQLException& e) {
    std::fprintf(stderr, "db_select_loop: [%d] %s\n", e.getErrorCode(), e.what());
    shared.errors += 1;
  }
  driver->threadEnd();
}

std::string first_line(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);
  return line;
}

// ops/mariadb.sh's client.env: NAME=value lines.
std::map<std::string, std::string> client_env(const std::string& dir) {
  std::map<std::string, std::string> env;
  std::ifstream file(dir + "/client.env");
  for (std::string line; std::getline(file, line);) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}

double process_cpu_s() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

// mariadbd's user + system time, from /proc/PID/stat (fields 14 and 15).
double server_cpu_s(const std::string& dir) {
  std::ifstream stat("/proc/" + first_line(dir + "/mysqld.pid") + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::istringstream fields(text.substr(text.rfind(')') + 2));
  std::string field;
  double ticks = 0;
  for (int n = 3; n <= 15 && fields >> field; ++n) {
    if (n >= 14) ticks += std::atof(field.c_str());
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: db_select_loop SERVER_DIR THREADS SECONDS ROWS\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::map<std::string, std::string> env = client_env(dir);
  if (env.empty()) {
    std::fprintf(stderr, "db_select_loop: no %s/client.env: start the server (ops/mariadb.sh start DIR)\n", dir.c_str());
    return 2;
  }
  Shared shared;
  const std::string transport = bench_transport();
  if (transport.empty()) return 2;
  if (transport == "socket") {
    shared.options["hostName"] = sql::SQLString("localhost");
    shared.options["socket"] = sql::SQLString(env["SHARD_DB_SOCKET"]);
  } else {
    shared.options["hostName"] = sql::SQLString("tcp://" + env["SHARD_DB_HOST"]);
    shared.options["port"] = std::atoi(env["SHARD_DB_PORT"].c_str());
  }
  shared.options["userName"] = sql::SQLString(env["SHARD_DB_USER"]);
  shared.options["password"] = sql::SQLString(first_line(env["SHARD_DB_PASSWORD_FILE"]));
  shared.options["schema"] = sql::SQLString(env["SHARD_DB_DATABASE"]);
  shared.options["OPT_CHARSET_NAME"] = sql::SQLString("utf8mb4");
  const int threads = std::atoi(argv[2]);
  const double seconds = std::atof(argv[3]);
  shared.rows = std::atoi(argv[4]);

  sql::Driver* driver = get_driver_instance();  // once: not thread-safe
  std::vector<std::thread> pool;
  for (int n = 0; n < threads; ++n) pool.emplace_back(run_thread, driver, std::ref(shared), 1234u + n);
  std::this_thread::sleep_for(std::chrono::seconds(1));  // connect, prepare, warm up
  const double cpu0 = process_cpu_s(), server0 = server_cpu_s(dir);
  shared.measuring = true;
  const auto start = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  shared.measuring = false;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu = process_cpu_s() - cpu0, server = server_cpu_s(dir) - server0;
  shared.stop = true;
  for (auto& t : pool) t.join();
  const auto queries = static_cast<double>(shared.queries.load());
  const double per_query_us = 1e6 / std::max(queries, 1.0);
  std::printf(
      "{\"bench\": \"db_select\", \"impl\": \"cpp_threads\", \"seconds\": %.3f, \"queries\": %.0f, \"value\": %.1f, "
      "\"unit\": \"queries/s\", \"client_cpu_us_per_query\": %.2f, \"server_cpu_us_per_query\": %.2f, "
      "\"threads\": %d, \"connections\": %d, \"transport\": \"%s\", \"errors\": %llu}\n",
      elapsed, queries, queries / elapsed, cpu * per_query_us, server * per_query_us, threads, threads, transport.c_str(),
      static_cast<unsigned long long>(shared.errors.load()));
  return shared.errors.load() == 0 ? 0 : 1;
}
