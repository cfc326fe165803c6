#pragma once
// Readiness of descriptors the engine does not own (a Python socket, a pipe),
// on the IO threads: the calling tasklet waits until one of them is readable,
// writable or has an exceptional condition, while every other tasklet runs.
// What tasklet sockets (engine/python/tasklet_sockets.py) wait with: they try
// the non-blocking operation and, on EAGAIN, wait here and try again.
//
// Each descriptor is dup()ed for the wait and the copy is registered with an
// IO thread's reactor (Asio's posix::stream_descriptor, async_wait), then
// deregistered and closed when the wait ends. The caller's descriptor is
// never registered, so it can be closed or reused by number at any time, and
// several tasklets may wait on the same descriptor at once (epoll refuses one
// number twice; the copies have numbers of their own). Readiness belongs to
// the open file description, which the copy shares. A regular file (epoll
// refuses those) is always ready, as poll() says.
//
// Deadline and cancellation are await_completion()'s: a killed tasklet, the
// deadline or the IO threads' stop cancels the Asio waits themselves.

#include <cstdint>
#include <system_error>
#include <vector>

#include "shard/engine/await_completion.h"

namespace shard::engine {

// poll()'s bits: POLLIN, POLLOUT, POLLPRI (others are ignored).
struct FdInterest {
  int fd = -1;
  short events = 0;
};

// GIL held, in a tasklet. Success: one of the descriptors is ready for one of
// its events (which one is for the caller to ask, e.g. poll() with timeout
// 0). Errors: WaitError (kTimedOut at deadline_ns, 0: none), EBADF for a
// closed descriptor, EINVAL for an interest without events or an empty list,
// dup()'s errors (EMFILE), the reactor's.
std::error_code wait_ready(const std::vector<FdInterest>& interests, int64_t deadline_ns);

}  // namespace shard::engine
