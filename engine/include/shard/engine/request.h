#pragma once
// Off-thread work for a waiting tasklet (the StacklessIO IORequest idea): a
// tasklet submits a Request and parks; a worker thread runs it; the finished
// request is queued as a completion and a dispatch strategy wakes the tasklet.
//
// Ownership: the request is shared (shared_ptr) by the waiting tasklet, the
// worker and the completion queue. Its C++ `work` never touches Python objects;
// Python work (call_in_thread) takes the interpreter lock on the worker through
// the worker's own thread state (dispatch/worker_gil.h).

#include <Python.h>

#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <system_error>

namespace shard::engine {

struct Tasklet;

struct Request {
  uint64_t seq = 0;             // submission order: on_block dispatches only older ones
  Tasklet* waiter = nullptr;    // owned reference; touched with the GIL only
  uint64_t wait_token = 0;      // the waiter's park (Scheduler::wake)
  // The waiter is a tasklet of another thread than the dispatcher's: the
  // worker wakes it itself (see Dispatcher), the strategies never see it.
  bool wake_from_worker = false;
  int64_t deadline_ns = 0;      // 0 = none
  std::atomic<bool> cancelled{false};  // the waiter gave up (killed, timed out)

  // Exactly one of these runs on the worker.
  std::function<void()> work;   // C++ work, no Python objects
  PyObject* callable = nullptr; // Python work: callable(*args) with the GIL (owned)
  PyObject* args = nullptr;

  // Set by the worker for Python work: the result or the exception (owned).
  PyObject* result = nullptr;
  PyObject* error = nullptr;
  // Set by the worker when C++ work threw: raised in the waiter as a Python error.
  std::exception_ptr failure;
  // Set by whoever completes an awaited asynchronous operation (io/): its
  // outcome, read by the waiter once woken.
  std::error_code outcome;

  // Timestamps (steady clock, ns) for the dispatch statistics.
  int64_t submitted_ns = 0;
  int64_t completed_ns = 0;
  int64_t dispatched_ns = 0;

  Request* next_completed = nullptr;  // link in the completion queue
  std::shared_ptr<Request> self_ref;  // keeps it alive while queued

  ~Request();
};

}  // namespace shard::engine
