#include "bindings/io_wait.h"

#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <vector>

#include "bindings/arguments.h"
#include "core/clock.h"
#include "shard/engine/fd_read.h"
#include "shard/engine/fd_wait.h"
#include "shard/engine/scheduler.h"
#include "shard/engine/waiters.h"

namespace shard::engine {
namespace {

// A relative timeout (seconds, None: forever) as a deadline on the engine's
// clock; false with the error set.
bool deadline_from(PyObject* timeout_obj, int64_t* deadline) {
  double timeout;
  if (!parse_timeout(timeout_obj, &timeout)) return false;
  constexpr double kForever = 1e9;  // seconds (31 years): beyond it, as None (and no overflow)
  *deadline = timeout >= 0 && timeout < kForever ? now_ns() + std::max<int64_t>(1, std::llround(timeout * 1e9)) : 0;
  return true;
}

// The IO threads are stopped (interpreter exit, after atexit stopped them):
// wait in poll() with the thread blocked, as a stock socket would.
PyObject* poll_blocking(const std::vector<FdInterest>& interests, int64_t deadline) {
  std::vector<pollfd> fds;
  for (const FdInterest& i : interests) fds.push_back({i.fd, i.events, 0});
  while (true) {
    int timeout_ms = -1;
    if (deadline != 0) {
      int64_t left = deadline - now_ns();
      if (left <= 0) Py_RETURN_FALSE;
      timeout_ms = static_cast<int>(std::min<int64_t>((left + 999'999) / 1'000'000, INT_MAX));
    }
    int ready;
    Py_BEGIN_ALLOW_THREADS
    ready = ::poll(fds.data(), fds.size(), timeout_ms);
    Py_END_ALLOW_THREADS
    if (ready > 0) Py_RETURN_TRUE;
    if (ready < 0 && errno != EINTR) return PyErr_SetFromErrno(PyExc_OSError);
    if (ready < 0 && PyErr_CheckSignals() < 0) return nullptr;
  }
}

bool parse_events(PyObject* value, short* events) {
  long bits = PyLong_AsLong(value);
  if (bits == -1 && PyErr_Occurred()) return false;
  if (bits <= 0 || bits > SHRT_MAX) {
    PyErr_Format(PyExc_ValueError, "events must be select.POLLIN, POLLOUT, POLLPRI or a combination, not %ld", bits);
    return false;
  }
  *events = static_cast<short>(bits);
  return true;
}

// The wait itself, with the tasklet's stack top recorded: True when ready,
// False at the deadline, an exception otherwise (killed: TaskletExit).
PyObject* wait_for(const std::vector<FdInterest>& interests, int64_t deadline, PyObject* const* top) {
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  sched->set_call_sp(top);
  std::error_code error = wait_ready(interests, deadline);
  if (error == WaitError::kTimedOut) Py_RETURN_FALSE;
  if (error == WaitError::kStopped) return poll_blocking(interests, deadline);
  if (error) return raise_wait_error(error, "io_wait");
  Py_RETURN_TRUE;
}

// io_wait(fd, events, timeout=None) -> bool: parks this tasklet until `fd` (an
// int or an object with fileno()) is ready for one of `events` (select.POLLIN,
// POLLOUT, POLLPRI); False when the timeout passed first.
PyObject* io_wait(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* parsed[3] = {nullptr, nullptr, nullptr};
  if (!parse_arguments("io_wait", args, nargs, kwnames, {"fd", "events", "timeout"}, 2, parsed)) return nullptr;
  FdInterest interest;
  interest.fd = PyObject_AsFileDescriptor(parsed[0]);
  if (interest.fd < 0 || !parse_events(parsed[1], &interest.events)) return nullptr;
  int64_t deadline;
  if (!deadline_from(parsed[2], &deadline)) return nullptr;
  return wait_for({interest}, deadline, stack_top(args, nargs, kwnames));
}

// io_wait_any(interests, timeout=None) -> bool: the same for an iterable of
// (fd, events) pairs; True as soon as one of them is ready.
PyObject* io_wait_any(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* parsed[2] = {nullptr, nullptr};
  if (!parse_arguments("io_wait_any", args, nargs, kwnames, {"interests", "timeout"}, 1, parsed)) return nullptr;
  PyObject* items = PySequence_Fast(parsed[0], "io_wait_any() interests must be an iterable of (fd, events)");
  if (items == nullptr) return nullptr;
  std::vector<FdInterest> interests;
  bool ok = true;
  for (Py_ssize_t i = 0; ok && i < PySequence_Fast_GET_SIZE(items); ++i) {
    PyObject* pair = PySequence_Fast_GET_ITEM(items, i);
    if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
      PyErr_Format(PyExc_TypeError, "io_wait_any() interests must be (fd, events) tuples, not %s", type_name(pair));
      ok = false;
      break;
    }
    FdInterest interest;
    interest.fd = PyObject_AsFileDescriptor(PyTuple_GET_ITEM(pair, 0));
    ok = interest.fd >= 0 && parse_events(PyTuple_GET_ITEM(pair, 1), &interest.events);
    if (ok) interests.push_back(interest);
  }
  Py_DECREF(items);
  if (!ok) return nullptr;
  if (interests.empty()) return PyErr_Format(PyExc_ValueError, "io_wait_any() needs at least one (fd, events)");
  int64_t deadline;
  if (!deadline_from(parsed[1], &deadline)) return nullptr;
  return wait_for(interests, deadline, stack_top(args, nargs, kwnames));
}

// io_read_packet(fd, max_size, timeout=None) -> bytes: one length-framed
// packet (4-byte big-endian length, then the payload) read by an IO thread
// (shard/engine/fd_read.h); only this tasklet waits. EOFError at the end of
// the stream before a packet, OSError "got end of file during message" inside
// one, OSError(EMSGSIZE) for a length over max_size, TimeoutError "timed out".
PyObject* io_read_packet(PyObject*, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* parsed[3] = {nullptr, nullptr, nullptr};
  if (!parse_arguments("io_read_packet", args, nargs, kwnames, {"fd", "max_size", "timeout"}, 2, parsed)) {
    return nullptr;
  }
  const int fd = PyObject_AsFileDescriptor(parsed[0]);
  if (fd < 0) return nullptr;
  const unsigned long long max_size = PyLong_AsUnsignedLongLong(parsed[1]);
  if (max_size == static_cast<unsigned long long>(-1) && PyErr_Occurred()) return nullptr;
  int64_t deadline;
  if (!deadline_from(parsed[2], &deadline)) return nullptr;
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  sched->set_call_sp(stack_top(args, nargs, kwnames));
  Outcome<PacketRead> read = read_packet(fd, static_cast<uint32_t>(std::min<unsigned long long>(max_size, UINT32_MAX)),
                                         deadline);
  if (read.error == WaitError::kTimedOut) return PyErr_Format(PyExc_TimeoutError, "timed out");
  if (!read) return raise_wait_error(read.error, "io_read_packet");
  PacketRead& packet = *read.value;
  switch (packet.end) {
    case PacketRead::End::kEof:
      PyErr_SetNone(PyExc_EOFError);
      return nullptr;
    case PacketRead::End::kEofInside:
      return PyErr_Format(PyExc_OSError, "got end of file during message");
    case PacketRead::End::kTooLarge: {
      PyObject* error = PyObject_CallFunction(PyExc_OSError, "iN", EMSGSIZE,
                                              PyUnicode_FromFormat("packet of %u bytes over the limit of %llu",
                                                                   packet.size, max_size));
      if (error != nullptr) PyErr_SetObject(PyExc_OSError, error);
      Py_XDECREF(error);
      return nullptr;
    }
    case PacketRead::End::kPacket:
      break;
  }
  return PyBytes_FromStringAndSize(reinterpret_cast<const char*>(packet.payload.data()),
                                   static_cast<Py_ssize_t>(packet.payload.size()));
}

PyMethodDef io_wait_methods[] = {
    {"io_wait", as_cfunction<io_wait>(), METH_FASTCALL | METH_KEYWORDS,
     "io_wait(fd, events, timeout=None) -> bool: wait on an IO thread until fd is ready for one of events "
     "(select.POLLIN/POLLOUT/POLLPRI); only this tasklet waits; False at the timeout"},
    {"io_wait_any", as_cfunction<io_wait_any>(), METH_FASTCALL | METH_KEYWORDS,
     "io_wait_any([(fd, events), ...], timeout=None) -> bool: io_wait for the first of several descriptors"},
    {"io_read_packet", as_cfunction<io_read_packet>(), METH_FASTCALL | METH_KEYWORDS,
     "io_read_packet(fd, max_size, timeout=None) -> bytes: one length-framed packet read by an IO thread"},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int add_io_wait(PyObject* module) { return PyModule_AddFunctions(module, io_wait_methods); }

}  // namespace shard::engine
