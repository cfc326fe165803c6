#pragma once
// A _net.Connection's reusable wait for its connection's notifications
// (recvpacket's "a packet is queued", a blocking send's "written up to n"),
// through the engine's one wait (await_completion), like wait_notify.h and
// with the same NotifiedWait state, but with one waiter object per connection
// object instead of a fresh shared state and a heap-held std::function per wait: the waiter is registered with
// the connection as a netproto::Waiter (a shared_ptr copy). It is reused once
// nobody else holds it (its last notification ran and the IO thread let it
// go); a wait that finds it busy (another tasklet waits on the same
// connection, or a given-up wait's notification is still pending) makes a
// new one. Giving the wait up withdraws the notification on the IO thread,
// which runs it as cancelled. GIL held, in a tasklet.

#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <system_error>

#include "notified_wait.h"
#include "shard/engine/await_completion.h"
#include "shard/netproto/connection.h"

namespace shard::net {

class ConnectionWaiter final : public netproto::Waiter {
 public:
  // Waits until the notification `subscribe(connection, notify)` registers
  // runs (a token back, as notify_readable/notify_sent give), the deadline
  // passes or the wait is given up. `slot` keeps the waiter between waits.
  template <class Subscribe>
  static std::error_code wait(std::shared_ptr<ConnectionWaiter>& slot,
                              const std::shared_ptr<netproto::Connection>& connection, Subscribe subscribe,
                              int64_t deadline_ns);

  void notify() noexcept override { done_->operator()(state_.outcome()); }

 private:
  // The slot's waiter, reset, if nobody else holds it; else a new one.
  static std::shared_ptr<ConnectionWaiter> take(std::shared_ptr<ConnectionWaiter>& slot);

  NotifiedWait state_;
  std::optional<engine::Completer> done_;  // set before the notification is registered
};

inline std::shared_ptr<ConnectionWaiter> ConnectionWaiter::take(std::shared_ptr<ConnectionWaiter>& slot) {
  if (slot != nullptr && slot.use_count() == 1) {
    // The IO thread's last use of it happened before it dropped its reference.
    std::atomic_thread_fence(std::memory_order_acquire);
    slot->state_.reset();
    slot->done_.reset();
    return slot;
  }
  slot = std::make_shared<ConnectionWaiter>();  // a busy one lives on in its wait
  return slot;
}

template <class Subscribe>
std::error_code ConnectionWaiter::wait(std::shared_ptr<ConnectionWaiter>& slot,
                                       const std::shared_ptr<netproto::Connection>& connection, Subscribe subscribe,
                                       int64_t deadline_ns) {
  std::shared_ptr<ConnectionWaiter> waiter;
  try {
    waiter = take(slot);
  } catch (const std::bad_alloc&) {
    return std::make_error_code(std::errc::not_enough_memory);
  }
  ConnectionWaiter* self = waiter.get();
  netproto::Connection* source = connection.get();
  // The start function refers to this frame through one pointer, so the
  // std::function holds it inline instead of a heap copy per wait.
  struct Frame {
    std::shared_ptr<ConnectionWaiter>& waiter;
    netproto::Connection* source;
    Subscribe& subscribe;
  } frame{waiter, source, subscribe};
  auto start = [f = &frame](engine::Completer done) {
    f->waiter->done_.emplace(std::move(done));
    netproto::Connection* source = f->source;
    f->waiter->state_.subscribed(f->subscribe(*source, netproto::Notify(std::shared_ptr<netproto::Waiter>(f->waiter))),
                                 [source](std::uint64_t token) { source->cancel_notify_later(token); });
  };
  // Called from the waiting thread or IoPool::stop() (under its lock: the
  // withdrawal is posted), only while await_completion() runs, when both
  // the waiter and the connection are held by this frame: two pointers fit
  // in the std::function itself, which then allocates nothing.
  engine::CancelFn cancel = [self, source] {
    if (const std::uint64_t token = self->state_.give_up(); token != 0) source->cancel_notify_later(token);
  };
  return engine::await_completion(start, cancel, deadline_ns);
}

}  // namespace shard::net
