#pragma once
// `stackless.channel`: a rendezvous point. Tasklets that cannot complete a send or
// receive wait in the channel's FIFO queue (a TaskletRing); `balance` counts
// waiting senders (>0) or receivers (<0).
//
// Channel state is touched only with the GIL held and no Python code runs inside
// an operation, so the GIL serialises channel operations of all threads; a
// partner of another thread is handed to that thread's scheduler, never switched
// to directly.

#include <Python.h>

#include "shard/engine/tasklet.h"
#include "shard/engine/tasklet_ring.h"

namespace shard::engine {

struct Channel {
  PyObject_HEAD
  PyObject* weakrefs_ = nullptr;
  TaskletRing queue_;  // the waiting tasklets, first waiter at the head
  int balance_ = 0;
  int preference_ = -1;      // -1 receiver runs first, 0 no switch, 1 sender runs first
  bool schedule_all_ = false;
  bool closing_ = false;

  bool closed() const { return closing_ && balance_ == 0; }
};

extern PyTypeObject ChannelType;

inline Channel* as_channel(PyObject* obj) { return reinterpret_cast<Channel*>(obj); }

enum class Direction : int { kSend = 1, kReceive = -1 };

// One send or receive by the current tasklet. For a send, `value` is what is
// sent; with `is_exception` it is an exception instance the receiver raises.
// Returns the received value (new reference), None for a send, or null.
PyObject* channel_action(Channel* ch, Direction dir, PyObject* value, bool is_exception);

// Takes a blocked tasklet out of its channel's queue; returns the queue's reference.
Tasklet* channel_unblock(Tasklet* t);
// Takes a blocked tasklet out of its channel, drops what it was sending, and
// makes it runnable in its own thread (kill, throw, an error passed to main).
void channel_release(Tasklet* t);

}  // namespace shard::engine
