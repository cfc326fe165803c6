#include "shard/engine/dispatcher.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <string>

#include "core/clock.h"
#include "core/cxx_boundary.h"
#include "core/frame_internals.h"
#include "dispatch/worker_gil.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/worker_pool.h"

namespace shard::engine {
namespace {

constexpr const char* kNames[kStrategies] = {"main_loop", "on_block", "main_thread_callback",
                                             "worker_acquires_gil", "pending_call"};
constexpr int kMinWorkers = 4;
constexpr int kMaxWorkers = 256;

}  // namespace

const char* strategy_name(Strategy s) { return kNames[static_cast<int>(s)]; }

bool strategy_from_name(const std::string& name, Strategy* out) {
  for (int i = 0; i < kStrategies; ++i) {
    if (name == kNames[i]) {
      *out = static_cast<Strategy>(i);
      return true;
    }
  }
  return false;
}

namespace {
Dispatcher* started = nullptr;  // set once, on the main thread
}  // namespace

Dispatcher::Dispatcher(Scheduler* main)
    : main_(main), main_thread_(std::this_thread::get_id()), interp_(PyThreadState_Get()->interp) {
  main_->retain();  // the dispatcher lives as long as the process
}

Dispatcher* Dispatcher::start() {
  if (started != nullptr) return started;
  Scheduler* main = Scheduler::current_or_create();
  if (main == nullptr) return nullptr;
  auto* d = new (std::nothrow) Dispatcher(main);
  if (d == nullptr) {
    PyErr_NoMemory();
    return nullptr;
  }
  // Without a game loop the scheduler's idle wait is the main thread's wait:
  // completions wake it, and it drains them.
  main->set_external_work([d] {
    d->drain();
    return d->in_flight();
  });
  started = d;
  return d;
}

Dispatcher* Dispatcher::get() {
  if (started == nullptr) {
    PyErr_SetString(PyExc_RuntimeError,
                    "off-thread requests need the engine's dispatcher, started with the interpreter by shard");
  }
  return started;
}

Dispatcher& Dispatcher::instance() { return *started; }

WorkerPool& Dispatcher::workers() {
  if (!workers_) {
    // SHARD_WORKERS_MAX bounds the pool (benchmarks pin it; a server may cap it).
    int max_workers = kMaxWorkers;
    if (const char* env = std::getenv("SHARD_WORKERS_MAX"); env != nullptr && *env != '\0') {
      max_workers = std::clamp(std::atoi(env), 1, kMaxWorkers);
    }
    workers_ = std::make_unique<WorkerPool>(*this, std::min(kMinWorkers, max_workers), max_workers);
  }
  return *workers_;
}

int Dispatcher::worker_threads() { return workers_ ? workers_->threads() : 0; }

void Dispatcher::reset_stats() { stats_ = {}; }

// ---------------------------------------------------------------- submitting

namespace {

// Null with MemoryError when it cannot be allocated.
std::shared_ptr<Request> new_request() {
  std::shared_ptr<Request> request;
  try {
    request = std::make_shared<Request>();
  } catch (const std::bad_alloc&) {
  }
  if (request == nullptr) PyErr_NoMemory();  // after the catch block: it may run Python
  return request;
}

}  // namespace

PyObject* Dispatcher::run_blocking(std::function<void()> work, double timeout_s) {
  auto request = new_request();
  if (request == nullptr) return nullptr;
  request->work = std::move(work);
  return wait_for(std::move(request), timeout_s);
}

PyObject* Dispatcher::call_in_thread(PyObject* callable, PyObject* args, double timeout_s) {
  auto request = new_request();
  if (request == nullptr) return nullptr;
  request->callable = Py_NewRef(callable);
  request->args = Py_NewRef(args);
  return wait_for(std::move(request), timeout_s);
}

Dispatcher::WaitEnd Dispatcher::wait(const std::shared_ptr<Request>& request, int64_t deadline_ns,
                                     const std::function<bool()>& start) {
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return WaitEnd::kNotStarted;
  Tasklet* self = sched->current_tasklet();
  request->seq = ++next_seq_;
  request->waiter = self;
  Py_INCREF(self);
  request->wake_from_worker = sched != main_;
  request->submitted_ns = now_ns();
  request->deadline_ns = deadline_ns;
  // The token exists before the request can complete: a fast completion finds it.
  request->wait_token = sched->prepare_park();
  if (!request->wake_from_worker) in_flight_.fetch_add(1);
  if (!start()) {
    uint64_t expected = request->wait_token;
    self->wait_token_.compare_exchange_strong(expected, 0);  // the park never happens
    if (!request->wake_from_worker) in_flight_.fetch_sub(1);
    return WaitEnd::kNotStarted;
  }
  if (!request->wake_from_worker && strategy() == Strategy::kOnBlock) drain_older_than(request->seq);
  bool timed_out = false;
  PyObject* woke;
  for (;;) {
    woke = sched->park(request->wait_token, request->deadline_ns, &timed_out);
    // Resumed by hand (tasklet.run() or insert() of the waiting tasklet): its
    // token is still set, the request still in flight, so it waits on.
    if (woke == nullptr || timed_out || self->wait_token_.load(std::memory_order_acquire) != request->wait_token) break;
    Py_DECREF(woke);
  }
  if (woke == nullptr || timed_out) {
    request->cancelled.store(true);  // skipped by its worker, or its late completion dropped
    Py_XDECREF(woke);
    return woke == nullptr ? WaitEnd::kInterrupted : WaitEnd::kTimedOut;
  }
  Py_DECREF(woke);
  if (!request->wake_from_worker) {
    stats_[static_cast<int>(strategy())].run.record(now_ns() - request->completed_ns);
  }
  return WaitEnd::kCompleted;
}

PyObject* Dispatcher::wait_for(std::shared_ptr<Request> request, double timeout_s) {
  int64_t deadline_ns = timeout_s >= 0 ? now_ns() + std::llround(timeout_s * 1e9) : 0;
  switch (wait(request, deadline_ns, [&] { return submit(request); })) {
    case WaitEnd::kNotStarted:
    case WaitEnd::kInterrupted:
      return nullptr;
    case WaitEnd::kTimedOut: {
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%f", timeout_s);
      PyErr_Format(PyExc_TimeoutError, "off-thread request did not complete within %s s", seconds);
      return nullptr;
    }
    case WaitEnd::kCompleted:
      break;
  }
  if (request->failure) {
    capture_exception(request->failure);
    raise_captured_exception("off-thread request failed");
    return nullptr;
  }
  if (request->error != nullptr) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(request->error)), request->error);
    return nullptr;
  }
  return Py_NewRef(request->result != nullptr ? request->result : Py_None);
}

bool Dispatcher::submit(const std::shared_ptr<Request>& request) {
  // The boundary: nothing the pool throws reaches CPython, and the Python
  // error is raised after the catch block (cxx_boundary.h says why).
  try {
    workers().submit(request);
    return true;
  } catch (...) {
    capture_current_exception();
  }
  raise_captured_exception("cannot submit an off-thread request");
  return false;
}

// ---------------------------------------------------------------- completing

void Dispatcher::complete(std::shared_ptr<Request> request) {
  if (enqueue(std::move(request))) signal();
}

bool Dispatcher::enqueue(std::shared_ptr<Request> request) {
  // On the main thread (an operation that completes as it starts, or one
  // dropped while the IO threads stop) the lock may already be held, and this
  // thread's own state must not become a worker's: no strategy that takes
  // the lock here. The queue is drained in phase 2 or the idle wait.
  const bool on_main_thread = std::this_thread::get_id() == main_thread_;
  if (request->wake_from_worker) {
    if (!on_main_thread) {
      wake_on_its_thread(std::move(request));
      return false;
    }
    PyGILState_STATE gil = PyGILState_Ensure();  // re-entrant where it is held
    if (!request->cancelled.load()) Scheduler::wake(request->waiter, request->wait_token);
    request.reset();
    PyGILState_Release(gil);
    return false;
  }
  completions_.push(std::move(request));
  if (on_main_thread) {
    wake_loop_or_idle(true);
    return false;
  }
  return true;
}

void Dispatcher::signal() {
  switch (strategy()) {
    case Strategy::kMainLoop:
    case Strategy::kOnBlock:
      // Drained in phase 2 (or by a blocking tasklet); only a main thread idle
      // outside the game loop needs waking.
      wake_loop_or_idle(false);
      break;
    case Strategy::kMainThreadCallback:
      wake_loop_or_idle(true);
      break;
    case Strategy::kWorkerAcquiresGil:
      workers_take_the_lock();
      break;
    case Strategy::kPendingCall:
      if (!pending_scheduled_.exchange(true)) {
        if (Py_AddPendingCall(guarded<pending_call_drain>, this) < 0) pending_scheduled_.store(false);
      }
      // Stock 3.11 raised the breaker for this (worker) thread only: raise it
      // for the main thread, on every signal while the drain is pending.
      shard_eval_breaker_set(interp_);
      wake_loop_or_idle(true);  // it may be asleep in a C wait
      break;
  }
}

void Dispatcher::wake_on_its_thread(std::shared_ptr<Request> request) {
  WorkerGil gil;
  if (!request->cancelled.load()) Scheduler::wake(request->waiter, request->wait_token);
  request.reset();  // if this was the last owner, its Python objects go with the lock held
}

void Dispatcher::wake_loop_or_idle(bool loop_too) {
  int fd = loop_wake_fd_.load(std::memory_order_acquire);
  if (fd < 0) {
    main_->wake_idle();
  } else if (loop_too) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t written = ::write(fd, &one, sizeof one);
  }
}

void Dispatcher::workers_take_the_lock() {
  // The first worker queues for the interpreter lock; the others append their
  // completion and leave. One acquisition drains everything queued by then.
  while (!completions_.empty()) {
    if (lock_taker_.exchange(true)) return;
    {
      WorkerGil gil;
      ++stats_[static_cast<int>(Strategy::kWorkerAcquiresGil)].lock_acquisitions;
      drain();
    }
    lock_taker_.store(false);
  }
}

int Dispatcher::pending_call_drain(void* self) {
  auto* d = static_cast<Dispatcher*>(self);
  d->pending_scheduled_.store(false);
  d->drain();
  return 0;  // never an error: a failure here would be raised in unrelated code
}

// ---------------------------------------------------------------- draining

void Dispatcher::dispatch(Request& request, Strategy s) {
  if (!request.cancelled.load()) {
    request.dispatched_ns = now_ns();
    StrategyStats& stats = stats_[static_cast<int>(s)];
    stats.dispatch.record(request.dispatched_ns - request.completed_ns);
    ++stats.completions;
    Scheduler::wake(request.waiter, request.wait_token);
  }
  // Only after the wake is visible: whoever sees nothing in flight must also
  // see the woken tasklet (in its thread's ring).
  in_flight_.fetch_sub(1);
}

Request* Dispatcher::take_batch() {
  Request* fresh = completions_.take_all();
  Request* batch = deferred_head_;
  if (batch == nullptr) return fresh;
  *deferred_tail_ = fresh;  // the deferred ones completed earlier
  deferred_head_ = nullptr;
  deferred_tail_ = &deferred_head_;
  return batch;
}

void Dispatcher::defer(std::shared_ptr<Request> request) {
  Request* node = request.get();
  node->self_ref = std::move(request);
  node->next_completed = nullptr;
  *deferred_tail_ = node;
  deferred_tail_ = &node->next_completed;
}

int Dispatcher::drain() {
  Strategy s = strategy();
  Request* batch = take_batch();
  if (batch == nullptr) return 0;
  ++stats_[static_cast<int>(s)].drains;
  int dispatched = 0;
  // A request dropped here may run a finalizer: the batch is ours alone by then.
  while (batch != nullptr) {
    dispatch(*CompletionQueue::pop(&batch), s);
    ++dispatched;
  }
  return dispatched;
}

std::vector<Tasklet*> Dispatcher::queued_waiters() const {
  std::vector<Tasklet*> fresh;  // newest first, as the queue holds them
  for (const Request* r = completions_.newest(); r != nullptr; r = r->next_completed) {
    if (!r->cancelled.load()) fresh.push_back(r->waiter);
  }
  std::vector<Tasklet*> waiters;  // the deferred ones completed earlier
  for (const Request* r = deferred_head_; r != nullptr; r = r->next_completed) {
    if (!r->cancelled.load()) waiters.push_back(r->waiter);
  }
  waiters.insert(waiters.end(), fresh.rbegin(), fresh.rend());
  return waiters;
}

int Dispatcher::drain_older_than(uint64_t seq) {
  Request* batch = take_batch();
  int dispatched = 0;
  while (batch != nullptr) {
    std::shared_ptr<Request> request = CompletionQueue::pop(&batch);
    if (request->seq < seq) {
      dispatch(*request, Strategy::kOnBlock);
      ++dispatched;
    } else {
      defer(std::move(request));
    }
  }
  if (dispatched > 0) ++stats_[static_cast<int>(Strategy::kOnBlock)].drains;
  return dispatched;
}

}  // namespace shard::engine
