#pragma once
// The database pool: `pool_size` database threads, each owning one
// Connector/C++ connection and the statements prepared on it. Work arrives as
// Jobs on a shared queue; a transaction pins one thread (and so one
// connection) from its BEGIN to its COMMIT or ROLLBACK, and its statements go
// to that thread's own queue. Pure C++: no Python, no interpreter lock; a
// tasklet waits for a job through the engine's reactor seam (python_module.cpp).
//
// A lost connection (the server restarted) is discarded with its statements
// and made again for the next job; meanwhile callers get the client's error
// (2002 "can't connect", 2006 "gone away", 2013 "lost connection"). Connector's
// automatic reconnect stays off: it silently loses session state and
// prepared statements. A query that failed with 2006 (nothing reached the
// server) is retried once on the new connection; a job inside a transaction
// never is: the transaction is lost with its connection.
//
// A query or execute abandoned while it runs (its caller's deadline passed,
// or the caller was killed) is stopped on the server: the pool's killer
// thread sends `KILL QUERY <connection id>` on a control connection of its
// own, so the statement ends (error 1317) and its connection serves the next
// job instead of running on to the statement's natural end. The same thread
// delivers results held back for a batch (pool.cpp, finish()) that no
// finishing job delivered within a millisecond.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "shard/db/config.h"
#include "shard/db/value.h"
#include "shard/engine/latency_histogram.h"

namespace shard::db {

enum class Op : uint8_t { kQuery, kExecute, kBegin, kCommit, kRollback };

// Client-side error codes of our own (the server's are 1000-1999, the
// client library's 2000-2999).
inline constexpr int kErrPoolStopped = 2999;     // the pool stopped before the job ran
inline constexpr int kErrTransactionLost = 2998; // its connection was lost: roll back and start again
inline constexpr int kErrNoTransaction = 2997;   // unknown or finished transaction

struct Result {
  int error = 0;  // 0: success; else the server's or the client's code
  std::string sqlstate;
  std::string message;
  std::vector<std::string> columns;  // kQuery, when the job asked for column_names
  std::vector<Row> rows;             // kQuery
  uint64_t affected = 0;             // kExecute
  uint64_t insert_id = 0;            // kExecute: LAST_INSERT_ID() after an INSERT or REPLACE
  uint64_t tx = 0;                   // kBegin: the transaction's id
};

struct Job {
  Op op = Op::kQuery;
  std::string sql;
  std::vector<Value> params;
  uint64_t tx = 0;  // 0: any connection; else the transaction's pinned one
  bool column_names = false;  // kQuery: fill Result::columns (named rows); skipped, they cost per query
  // Queued ahead of every job waiting for a connection (behind the other
  // urgent ones): the cluster directory's heartbeat must not wait out a
  // burst of client work.
  bool urgent = false;
  // Called once, on a database thread (or by stop()), with the outcome.
  std::function<void(Result)> done;

  // Set by Pool::abandon (the waiter gave up), read by the database thread.
  std::mutex state;
  bool abandoned = false;
  bool delivered = false;
  uint64_t begun_tx = 0;  // kBegin, once delivered
};

struct PoolStats {
  int size = 0;
  int connected = 0;
  int in_use = 0;        // threads running a job or pinned by a transaction
  int transactions = 0;  // pinned threads
  size_t waiting = 0;    // jobs on the shared queue
  uint64_t queries = 0;  // jobs run
  uint64_t errors = 0;   // jobs that ended in an error
  uint64_t disconnects = 0;  // connections lost (made again on the next job)
  uint64_t kills = 0;        // KILL QUERY sent for abandoned running statements
  uint64_t holds = 0;        // batches of results held back to be delivered together
  uint64_t killer_wakes = 0; // the killer thread's wakes (its deadline, or woken)
  uint64_t latency_count = 0;
  int64_t latency_p50_ns = 0, latency_p99_ns = 0, latency_max_ns = 0;  // queue wait + run
};

class Pool final {
 public:
  explicit Pool(Config config);
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Starts the threads; they connect on their first job.
  void start();
  // Stops the threads after their current job; queued jobs fail with
  // kErrPoolStopped; open transactions roll back (their connections close).
  void stop();

  // Queues the job; its done() is called exactly once.
  void submit(std::shared_ptr<Job> job);
  // The waiter gave up on the job (timed out, killed): a job not started is
  // skipped, a transaction begun for it is rolled back. Any thread, any time.
  void abandon(const std::shared_ptr<Job>& job);

  PoolStats stats();
  const Config& config() const { return config_; }

 private:
  struct Worker;
  struct Killer;
  void run_worker(Worker& worker);
  // The next job `worker` may run now (under mutex_), marked as its current
  // one; null when there is none.
  std::shared_ptr<Job> take(Worker& worker, int64_t& queued_ns);
  // Wakes one database thread asleep without work, if any (under mutex_).
  void wake_one_idle();
  // The killer thread: due KILL QUERYs, and held results past kMaxHoldNs.
  void run_killer();
  // Calls each job's done() with its result, outside the mutex; empties `batch`.
  static void deliver(std::vector<std::pair<std::shared_ptr<Job>, Result>>& batch);
  // The held results delivered, `lock` (of mutex_) let go meanwhile.
  void deliver_held(std::unique_lock<std::mutex>& lock);
  // Worker running `job` (under mutex_), or null.
  Worker* running(const std::shared_ptr<Job>& job);
  // Books the job's end and delivers its result (or holds it back); returns
  // the worker's next job when one was ready, taken in the same hold of the
  // pool's mutex, else null.
  std::shared_ptr<Job> finish(Worker& worker, const std::shared_ptr<Job>& job, Result result, int64_t queued_ns,
                              int64_t& next_queued_ns);

  const Config config_;
  std::mutex mutex_;
  bool stopping_ = false;
  // Database threads asleep with nothing to run, last asleep last: a new job
  // wakes exactly one of them (each sleeps on its own condition), the one
  // whose caches are warmest, instead of every sleeping thread for one job.
  std::vector<Worker*> idle_;
  std::deque<std::pair<std::shared_ptr<Job>, int64_t>> shared_;  // (job, queued at)
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unordered_map<uint64_t, Worker*> transactions_;
  // Running jobs to stop on the server, each with when to try (again).
  std::deque<std::pair<std::shared_ptr<Job>, int64_t>> kills_;
  std::condition_variable kill_wake_;
  // When the killer's wait ends by itself: INT64_MAX while it waits with no
  // deadline, 0 while it is awake (it looks at everything before it waits).
  int64_t killer_wait_until_ns_ = 0;
  std::unique_ptr<Killer> killer_;
  // Results of finished jobs held back to be delivered together (finish()),
  // since held_since_ns_; the killer thread delivers them after kMaxHoldNs.
  std::vector<std::pair<std::shared_ptr<Job>, Result>> held_;
  int64_t held_since_ns_ = 0;
  uint64_t next_tx_ = 1;
  PoolStats counters_;
  engine::LatencyHistogram latency_;
};

}  // namespace shard::db
