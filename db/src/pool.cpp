#include "shard/db/pool.h"

#include <cppconn/driver.h>

#include <algorithm>
#include <chrono>
#include <cstdint>

#include "connection.h"

namespace shard::db {
namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A KILL that lands before its statement reached the server (the job was
// abandoned just as it started) stops nothing: tried again while it runs.
constexpr int64_t kKillRetryNs = 200'000'000;
// The control connection never waits long on a server that does not answer.
constexpr int kKillerIoTimeoutS = 5;
// Results held back to be delivered together (one wake of the waiters'
// thread for many): at most this many, and only while the queue holds at
// least kHoldWhileQueuedPerThread jobs per database thread, so the threads
// stay busy meanwhile and a result waits at most for a few others. Whatever
// job finishes next delivers them, and the killer thread does after
// kMaxHoldNs: the other threads may all be pinned by transactions waiting
// for a lock, or running a long statement, and a held result must not wait
// on them (a sol's heartbeat did, for seconds, under a market's lock queue).
// That is a backstop, not the common way: under load a job finishes every
// few microseconds, and a killer woken for each hold (a wake and two context
// switches ~2,000 times a second) took a quarter of the pool's queries/s on
// two vCPUs. So it is woken only when its wait would outlast a new hold's
// deadline, and the deadline is long enough that its own timer rarely fires.
constexpr size_t kMaxHeld = 16;
constexpr size_t kHoldWhileQueuedPerThread = 2;
constexpr int64_t kMaxHoldNs = 5'000'000;

Result error_result(int code, std::string message) {
  Result result;
  result.error = code;
  result.message = std::move(message);
  return result;
}

}  // namespace

struct Pool::Worker {
  explicit Worker(const Config& config) : connection(config) {}
  Connection connection;              // this thread's only
  std::shared_ptr<Job> current;       // the job it runs, under the pool's mutex
  // Held by the killer while its KILL QUERY for this connection is in
  // flight; the worker takes it to let go of its job, so a KILL can only
  // ever stop the statement of the job it was sent for.
  std::mutex kill_guard;
  std::condition_variable wake;       // a job for it (shared or pinned), or stop()
  std::deque<std::pair<std::shared_ptr<Job>, int64_t>> pinned;  // its transaction's jobs
  uint64_t tx = 0;                    // the transaction pinning it (0: none)
  bool tx_lost = false;               // its connection was lost inside the transaction
  bool connected = false;             // for stats, under the pool's mutex
  bool busy = false;                  // running a job, under the pool's mutex
  std::thread thread;
};

struct Pool::Killer {
  explicit Killer(const Config& config) : connection(config, kKillerIoTimeoutS) {}
  Connection connection;  // the control connection, made at the first kill
  std::thread thread;
};

Pool::Pool(Config config) : config_(std::move(config)) {}

Pool::~Pool() { stop(); }

void Pool::start() {
  driver();  // once, before any thread: get_driver_instance() is not thread-safe
  std::lock_guard lock(mutex_);
  counters_.size = config_.pool_size;
  for (int n = 0; n < config_.pool_size; ++n) {
    workers_.push_back(std::make_unique<Worker>(config_));
    Worker* worker = workers_.back().get();
    worker->thread = std::thread([this, worker] { run_worker(*worker); });
  }
  killer_ = std::make_unique<Killer>(config_);
  killer_->thread = std::thread([this] { run_killer(); });
}

void Pool::stop() {
  std::deque<std::pair<std::shared_ptr<Job>, int64_t>> left;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    left.swap(shared_);
    idle_.clear();
  }
  for (auto& worker : workers_) worker->wake.notify_one();
  kill_wake_.notify_all();
  if (killer_ != nullptr && killer_->thread.joinable()) killer_->thread.join();
  for (auto& worker : workers_) {
    if (worker->thread.joinable()) worker->thread.join();
    for (auto& pinned : worker->pinned) left.push_back(std::move(pinned));
  }
  deliver(held_);  // ran to their end: their results, not an error
  for (auto& [job, queued] : left) job->done(error_result(kErrPoolStopped, "the database pool is stopped"));
}

void Pool::deliver(std::vector<std::pair<std::shared_ptr<Job>, Result>>& batch) {
  for (auto& [job, result] : batch) job->done(std::move(result));
  batch.clear();
}

void Pool::deliver_held(std::unique_lock<std::mutex>& lock) {
  std::vector<std::pair<std::shared_ptr<Job>, Result>> batch;
  batch.swap(held_);
  lock.unlock();
  deliver(batch);
  lock.lock();
}

void Pool::submit(std::shared_ptr<Job> job) {
  bool stopped;
  bool queued = false;
  Worker* wake = nullptr;  // notified after the mutex is let go: it wakes to take it
  {
    std::lock_guard lock(mutex_);
    stopped = stopping_;
    if (!stopped) {
      if (job->tx == 0) {
        if (job->urgent) {
          // Behind the urgent jobs already waiting, ahead of the rest.
          auto first_normal = std::find_if(shared_.begin(), shared_.end(),
                                           [](const auto& queued) { return !queued.first->urgent; });
          shared_.emplace(first_normal, std::move(job), now_ns());
        } else {
          shared_.emplace_back(std::move(job), now_ns());
        }
        queued = true;
        if (!idle_.empty()) {
          wake = idle_.back();
          idle_.pop_back();
        }
      } else if (auto found = transactions_.find(job->tx); found != transactions_.end()) {
        found->second->pinned.emplace_back(std::move(job), now_ns());
        queued = true;
        wake = found->second;  // only the pinned thread may run it
      }
    }
  }
  if (wake != nullptr) wake->wake.notify_one();
  if (queued) return;
  if (stopped) return job->done(error_result(kErrPoolStopped, "the database pool is stopped"));
  job->done(error_result(kErrNoTransaction, "no such transaction (it was committed or rolled back)"));
}

void Pool::abandon(const std::shared_ptr<Job>& job) {
  uint64_t begun = 0;
  {
    std::lock_guard lock(job->state);
    job->abandoned = true;
    if (job->delivered) begun = job->begun_tx;
  }
  // Still queued: out of the line, so that it neither holds a place nor
  // counts as waiting. (A commit or rollback stays: it must run.)
  if (job->op != Op::kCommit && job->op != Op::kRollback) {
    bool removed = false;
    {
      std::lock_guard lock(mutex_);
      auto unqueue = [&](auto& queue) {
        for (auto it = queue.begin(); it != queue.end(); ++it) {
          if (it->first == job) {
            queue.erase(it);
            return true;
          }
        }
        return false;
      };
      removed = unqueue(shared_);
      for (auto& worker : workers_) removed = removed || unqueue(worker->pinned);
      // Running: stopped on the server, so that its connection comes back
      // now rather than at the statement's end.
      if (!removed && job->op != Op::kBegin && !stopping_ && running(job) != nullptr) {
        kills_.emplace_back(job, 0);
        kill_wake_.notify_one();
      }
    }
    if (removed) return job->done(error_result(kErrPoolStopped, "abandoned by its caller"));
  }
  // The transaction was begun, but its waiter gave up before it heard so:
  // nobody else will end it.
  if (begun != 0) {
    auto rollback = std::make_shared<Job>();
    rollback->op = Op::kRollback;
    rollback->tx = begun;
    rollback->done = [](Result) {};
    submit(std::move(rollback));
  }
}

std::shared_ptr<Job> Pool::take(Worker& worker, int64_t& queued_ns) {
  if (stopping_ || (worker.pinned.empty() && (worker.tx != 0 || shared_.empty()))) return nullptr;
  auto& queue = !worker.pinned.empty() ? worker.pinned : shared_;
  std::shared_ptr<Job> job;
  std::tie(job, queued_ns) = std::move(queue.front());
  queue.pop_front();
  worker.busy = true;
  worker.current = job;
  return job;
}

void Pool::run_worker(Worker& worker) {
  driver()->threadInit();
  std::shared_ptr<Job> job;  // the next job, when finish() took one
  int64_t queued_ns = 0;
  for (;;) {
    if (job == nullptr) {
      std::unique_lock lock(mutex_);
      while (!stopping_ && (job = take(worker, queued_ns)) == nullptr) {
        if (!held_.empty()) {
          deliver_held(lock);  // nothing to run here: they go now, not after the next job
          continue;
        }
        // A pinned thread waits for its transaction's jobs only: submit()
        // wakes it by name, never as an idle one.
        const bool for_shared = worker.tx == 0;
        if (for_shared) idle_.push_back(&worker);
        worker.wake.wait(lock);
        if (for_shared) std::erase(idle_, &worker);  // still listed after a spurious wake
      }
      if (job == nullptr) break;  // stopping
    }
    bool skip;
    {
      std::lock_guard lock(job->state);
      skip = job->abandoned && job->op != Op::kCommit && job->op != Op::kRollback;
    }
    Result result;
    if (skip) {
      result = error_result(kErrPoolStopped, "abandoned by its caller");
    } else if (worker.tx != 0 && worker.tx_lost) {
      result = error_result(kErrTransactionLost, "the transaction was lost with its connection (server restarted?)");
      if (job->op == Op::kRollback) result = Result{};  // nothing left to roll back
    } else {
      const bool outside_transaction = worker.tx == 0;  // a BEGIN too: nothing to lose yet
      result = worker.connection.run(*job, outside_transaction);
      // Nothing reached the server: a query outside a transaction is safe to
      // run again on a new connection.
      if (result.error == 2006 && outside_transaction && job->op == Op::kQuery) {
        result = worker.connection.run(*job, false);
      }
      if (is_connection_lost(result.error) && worker.tx != 0) worker.tx_lost = true;
    }
    int64_t next_queued_ns = 0;
    job = finish(worker, job, std::move(result), queued_ns, next_queued_ns);
    queued_ns = next_queued_ns;
  }
  worker.connection.disconnect();
  driver()->threadEnd();
}

std::shared_ptr<Job> Pool::finish(Worker& worker, const std::shared_ptr<Job>& job, Result result, int64_t queued_ns,
                                  int64_t& next_queued_ns) {
  // Outside a transaction and with a long queue, a query's result may wait
  // for a few others, to wake its caller's thread once for all of them. That
  // is decided, and the thread's next job taken, in the same hold of the
  // pool's mutex as the bookkeeping: one lock of that contended mutex per
  // job, not two (a thread preempted holding it stalls the others).
  const bool holdable = job->tx == 0 && (job->op == Op::kQuery || job->op == Op::kExecute);
  std::vector<std::pair<std::shared_ptr<Job>, Result>> batch;
  std::shared_ptr<Job> next;
  bool held = false;
  {
    std::lock_guard guard(worker.kill_guard);  // a KILL in flight lands before the connection moves on
    std::lock_guard lock(mutex_);
    worker.current.reset();
    worker.busy = false;
    ++counters_.queries;
    if (result.error != 0) ++counters_.errors;
    latency_.record(now_ns() - queued_ns);
    const bool was_connected = worker.connected;
    worker.connected = worker.connection.connected();
    if (was_connected && !worker.connected) ++counters_.disconnects;
    if (job->op == Op::kBegin && result.error == 0) {
      worker.tx = next_tx_++;
      worker.tx_lost = false;
      transactions_[worker.tx] = &worker;
      result.tx = worker.tx;
    } else if (job->op == Op::kCommit || job->op == Op::kRollback) {
      transactions_.erase(worker.tx);
      worker.tx = 0;
      worker.tx_lost = false;
    }
    if (holdable && !stopping_ && shared_.size() >= kHoldWhileQueuedPerThread * workers_.size() &&
        held_.size() + 1 < kMaxHeld) {
      {
        std::lock_guard state(job->state);  // before another thread may deliver it
        job->delivered = true;
      }
      if (held_.empty()) {
        ++counters_.holds;
        held_since_ns_ = now_ns();
        // The killer delivers them if no job finishes in time.
        if (killer_wait_until_ns_ > held_since_ns_ + kMaxHoldNs) kill_wake_.notify_one();
      }
      held_.emplace_back(job, std::move(result));
      held = true;
    } else {
      batch.swap(held_);
    }
    // A BEGIN's outcome decides what its connection does next (below, an
    // orphaned transaction is rolled back on it): no next job with one.
    if (job->op != Op::kBegin) next = take(worker, next_queued_ns);
  }
  if (held) return next;
  bool orphaned = false;
  {
    std::lock_guard lock(job->state);
    job->delivered = true;
    job->begun_tx = result.tx;
    orphaned = job->abandoned && result.tx != 0;
  }
  if (orphaned) {
    // Begun for a waiter already gone: end it here, on its own thread.
    Job rollback;
    rollback.op = Op::kRollback;
    worker.connection.run(rollback, false);
    std::lock_guard lock(mutex_);
    transactions_.erase(worker.tx);
    worker.tx = 0;
  }
  deliver(batch);
  job->done(std::move(result));
  return next;
}

Pool::Worker* Pool::running(const std::shared_ptr<Job>& job) {
  for (auto& worker : workers_) {
    if (worker->current == job) return worker.get();
  }
  return nullptr;
}

void Pool::run_killer() {
  driver()->threadInit();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    const int64_t now = now_ns();
    if (!held_.empty() && now >= held_since_ns_ + kMaxHoldNs) {
      deliver_held(lock);
      continue;
    }
    // The first kill that is due, dropping those whose job ended meanwhile.
    std::erase_if(kills_, [this](const auto& kill) { return running(kill.first) == nullptr; });
    int64_t next_due = held_.empty() ? INT64_MAX : held_since_ns_ + kMaxHoldNs;
    auto due = kills_.end();
    for (auto it = kills_.begin(); it != kills_.end(); ++it) {
      if (it->second <= now && due == kills_.end()) due = it;
      next_due = std::min(next_due, it->second);
    }
    if (due == kills_.end()) {
      killer_wait_until_ns_ = next_due;
      if (next_due == INT64_MAX) {
        kill_wake_.wait(lock);
      } else {
        kill_wake_.wait_for(lock, std::chrono::nanoseconds(next_due - now));
      }
      killer_wait_until_ns_ = 0;
      ++counters_.killer_wakes;
      continue;
    }
    std::shared_ptr<Job> job = std::move(due->first);
    kills_.erase(due);
    Worker* worker = running(job);
    lock.unlock();
    {
      std::lock_guard guard(worker->kill_guard);
      uint64_t id = 0;
      {
        std::lock_guard check(mutex_);
        if (worker->current == job) id = worker->connection.id();
      }
      if (id != 0) {
        Job kill;
        kill.op = Op::kExecute;
        kill.sql = "KILL QUERY ?";
        kill.params.resize(1);
        kill.params[0].kind = Value::Kind::kUInt;
        kill.params[0].u = id;
        Result killed = killer_->connection.run(kill, true);
        std::lock_guard count(mutex_);
        if (killed.error == 0) ++counters_.kills;
      }
    }
    lock.lock();
    // Looked at again after a while: dropped above once its job has ended.
    kills_.emplace_back(std::move(job), now_ns() + kKillRetryNs);
  }
  lock.unlock();
  killer_->connection.disconnect();
  driver()->threadEnd();
}

PoolStats Pool::stats() {
  std::lock_guard lock(mutex_);
  PoolStats stats = counters_;
  for (auto& worker : workers_) {
    if (worker->connected) ++stats.connected;
    if (worker->tx != 0) ++stats.transactions;
    if (worker->busy || worker->tx != 0) ++stats.in_use;
  }
  stats.waiting = shared_.size();
  stats.latency_count = latency_.count();
  stats.latency_p50_ns = latency_.quantile(0.5);
  stats.latency_p99_ns = latency_.quantile(0.99);
  stats.latency_max_ns = latency_.max();
  return stats;
}

}  // namespace shard::db
