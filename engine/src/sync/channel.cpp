#include "shard/engine/channel.h"

#include "core/switch_hooks.h"
#include "shard/engine/scheduler.h"

namespace shard::engine {
namespace {

// How the core lets go of a tasklet blocked on a channel.
class ChannelBlocker final : public Blocker {
 public:
  void release(Tasklet* t) override { channel_release(t); }
  const char* deadlock_message(const Tasklet* main) const override {
    return main->blocked_dir_ < 0 ? "the main tasklet is receiving without a sender available."
                                  : "the main tasklet is sending without a receiver available.";
  }
};
ChannelBlocker channel_blocker;

void enqueue(Channel* ch, Tasklet* t, Direction dir) {
  t->blocker_ = &channel_blocker;
  t->channel_ = ch;
  t->blocked_dir_ = static_cast<int8_t>(dir);
  ch->queue_.push_back(t);
  ch->balance_ += static_cast<int>(dir);
}

// What a send or receive that did not switch returns: None for a send; for a
// receive, the value (or raised exception) it took from the partner.
PyObject* take_received(Tasklet* self, Direction dir) {
  PyObject* value = self->tempval_;
  bool is_exception = self->tempval_is_exc_;
  self->tempval_ = nullptr;
  self->tempval_is_exc_ = false;
  if (dir == Direction::kSend || value == nullptr) {
    Py_XDECREF(value);
    Py_RETURN_NONE;
  }
  if (is_exception) {
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(value)), value);
    Py_DECREF(value);
    return nullptr;
  }
  return value;
}

}  // namespace

Tasklet* channel_unblock(Tasklet* t) {
  Channel* ch = t->channel_;
  ch->queue_.unlink(t);
  ch->balance_ -= t->blocked_dir_;
  t->blocker_ = nullptr;
  t->channel_ = nullptr;
  t->blocked_dir_ = 0;
  return t;
}

// stackless.set_channel_callback()'s callback, before the action, as Stackless
// calls it: the acting tasklet's tempval is the value sent (None for a
// receive) for the duration, so the callback can see it.
static bool notify_channel_callback(Channel* ch, Tasklet* self, Direction dir, PyObject* value, bool willblock) {
  PyObject* saved = self->tempval_;
  bool saved_is_exc = self->tempval_is_exc_;
  self->tempval_ = Py_NewRef(dir == Direction::kSend ? value : Py_None);
  self->tempval_is_exc_ = false;
  bool ok = hooks::call_channel_callback(reinterpret_cast<PyObject*>(ch), self, dir == Direction::kSend, willblock);
  Py_XSETREF(self->tempval_, saved);
  self->tempval_is_exc_ = saved_is_exc;
  return ok;
}

void channel_release(Tasklet* t) {
  Tasklet* owned = channel_unblock(t);
  Py_CLEAR(t->tempval_);
  t->tempval_is_exc_ = false;
  Scheduler::make_runnable(t);
  Py_DECREF(owned);
}

namespace {

inline PyObject* exchange(Channel* ch, Direction dir, PyObject* value, bool is_exception) {
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  Tasklet* self = sched->current_tasklet();
  const int d = static_cast<int>(dir);

  if (ch->balance_ * d < 0) {
    // A partner waits: exchange with it.
    Tasklet* partner = channel_unblock(ch->queue_.head());  // the queue's reference, now ours
    if (dir == Direction::kSend) {
      Py_INCREF(value);
      Py_XSETREF(partner->tempval_, value);
      partner->tempval_is_exc_ = is_exception;
    } else {
      Py_XSETREF(self->tempval_, partner->tempval_);
      self->tempval_is_exc_ = partner->tempval_is_exc_;
      partner->tempval_ = nullptr;
      partner->tempval_is_exc_ = false;
    }
    PyObject* result;
    if (partner->sched_ != sched) {
      // Never switch across threads: the partner runs when its thread schedules.
      Scheduler::make_runnable(partner);
      result = take_received(self, dir);
    } else if (ch->schedule_all_) {
      sched->insert(partner);
      result = sched->schedule(false, self->tempval_);  // we get our value back on resume
    } else if (ch->preference_ == -d) {
      // The partner runs first, right after us in the ring; we run again only
      // after the others had their turn.
      sched->insert_after_current(partner);
      result = sched->run_tasklet(partner, false);
    } else {
      sched->insert(partner);  // no switch: it runs in its turn
      result = take_received(self, dir);
    }
    Py_DECREF(partner);
    return result;
  }

  if (ch->closing_) {
    PyErr_SetString(PyExc_ValueError, "Send/receive operation on a closed channel");
    return nullptr;
  }
  if (self->block_trap_) {
    PyErr_SetString(PyExc_RuntimeError, "this tasklet does not like to be blocked.");
    return nullptr;
  }
  if (dir == Direction::kSend) {
    Py_INCREF(value);
    Py_XSETREF(self->tempval_, value);
    self->tempval_is_exc_ = is_exception;
  }
  Py_INCREF(self);  // the ring's reference moves to the channel
  sched->remove(self);
  enqueue(ch, self, dir);
  Py_DECREF(self);
  PyObject* result = sched->block_current();
  if (result == nullptr && self->channel_ == ch) {
    // Deadlock: nobody could ever wake us; leave the channel as it was.
    Tasklet* owned = channel_unblock(self);
    sched->reinstate_current();
    Py_DECREF(owned);
    Py_CLEAR(self->tempval_);
    self->tempval_is_exc_ = false;
  }
  return result;
}

// Out of line, and called in tail position: the hook costs the hot path one
// test, without holding registers across a call.
[[gnu::noinline, gnu::cold]] PyObject* notify_then_exchange(Channel* ch, Direction dir, PyObject* value,
                                                            bool is_exception) {
  Scheduler* sched = Scheduler::current_or_create();
  if (sched == nullptr) return nullptr;
  const bool willblock = ch->balance_ * static_cast<int>(dir) >= 0;
  if (!notify_channel_callback(ch, sched->current_tasklet(), dir, value, willblock)) return nullptr;
  return exchange(ch, dir, value, is_exception);
}

}  // namespace

PyObject* channel_action(Channel* ch, Direction dir, PyObject* value, bool is_exception) {
  if (hooks::channel_callback != nullptr) [[unlikely]] return notify_then_exchange(ch, dir, value, is_exception);
  return exchange(ch, dir, value, is_exception);
}

}  // namespace shard::engine
