// The db pool without Python (docs/benchmarks.md, "The database"): CALLERS
// virtual callers, each a chain of jobs on shard::db::Pool (POOL_SIZE
// connections) whose done() submits the caller's next query, on the
// database thread that finished it. The same query and server as
// db_select_loop and tools/bench/db_bench.py: what the pool's own machinery
// costs (shared queue, handoffs, Result building, batched delivery), apart
// from the interpreter and the tasklets' thread. Prints one JSON line.
//
//   db_pool_loop SERVER_DIR POOL_SIZE CALLERS SECONDS ROWS    (SERVER_DIR: ops/mariadb.sh's)
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "db_bench_transport.h"
#include "shard/db/pool.h"

namespace {

using shard::db::Job;
using shard::db::Op;
using shard::db::Pool;
using shard::db::Result;
using shard::db::Value;

struct Run {
  Pool* pool = nullptr;
  int rows = 0;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> queries{0};
  std::atomic<uint64_t> errors{0};
};

// The caller's next query: ids in a fixed pseudo-random order per caller.
void submit_next(Run& run, uint32_t state) {
  auto job = std::make_shared<Job>();
  job->op = Op::kQuery;
  job->sql = "SELECT id, name, value FROM bench_kv WHERE id = ?";
  state = state * 1664525u + 1013904223u;
  const int64_t wanted = 1 + static_cast<int64_t>(state % static_cast<uint32_t>(run.rows));
  job->params.resize(1);
  job->params[0].kind = Value::Kind::kInt;
  job->params[0].i = wanted;
  job->done = [&run, state, wanted](Result result) {
    if (result.error == shard::db::kErrPoolStopped) return;  // the run is over
    if (result.error != 0 || result.rows.size() != 1 || result.rows[0][0].i != wanted) {
      std::fprintf(stderr, "db_pool_loop: [%d] %s\n", result.error, result.message.c_str());
      ++run.errors;
    }
    ++run.queries;
    if (!run.stop.load(std::memory_order_relaxed)) submit_next(run, state);
  };
  run.pool->submit(std::move(job));
}

std::string first_line(const std::string& path) {
  std::ifstream file(path);
  std::string line;
  std::getline(file, line);
  return line;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: db_pool_loop SERVER_DIR POOL_SIZE CALLERS SECONDS ROWS\n");
    return 2;
  }
  std::map<std::string, std::string> env;
  std::ifstream file(std::string(argv[1]) + "/client.env");
  for (std::string line; std::getline(file, line);) {
    size_t eq = line.find('=');
    if (eq != std::string::npos) env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  if (env.empty()) {
    std::fprintf(stderr, "db_pool_loop: no %s/client.env: start the server (ops/mariadb.sh start DIR)\n", argv[1]);
    return 2;
  }
  shard::db::Config config;
  const std::string transport = bench_transport();
  if (transport.empty()) return 2;
  if (transport == "socket") {
    config.socket = env["SHARD_DB_SOCKET"];
  } else {
    config.host = env["SHARD_DB_HOST"];
    config.port = std::atoi(env["SHARD_DB_PORT"].c_str());
  }
  config.user = env["SHARD_DB_USER"];
  config.password = first_line(env["SHARD_DB_PASSWORD_FILE"]);
  config.database = env["SHARD_DB_DATABASE"];
  config.pool_size = std::atoi(argv[2]);
  const int callers = std::atoi(argv[3]);
  const double seconds = std::atof(argv[4]);

  Pool pool(config);
  Run run;
  run.pool = &pool;
  run.rows = std::atoi(argv[5]);
  pool.start();
  for (int n = 0; n < callers; ++n) submit_next(run, 7919u * static_cast<uint32_t>(n + 1));
  std::this_thread::sleep_for(std::chrono::seconds(1));  // connect, prepare, warm up
  const uint64_t before = run.queries.load();
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t queries = run.queries.load() - before;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.stop = true;
  pool.stop();
  std::printf(
      "{\"bench\": \"db_select\", \"impl\": \"pool_cpp\", \"seconds\": %.3f, \"queries\": %llu, \"value\": %.1f, "
      "\"unit\": \"queries/s\", \"callers\": %d, \"connections\": %d, \"transport\": \"%s\", \"errors\": %llu}\n",
      elapsed, static_cast<unsigned long long>(queries), static_cast<double>(queries) / elapsed, callers,
      config.pool_size, transport.c_str(), static_cast<unsigned long long>(run.errors.load()));
  return run.errors.load() == 0 ? 0 : 1;
}
