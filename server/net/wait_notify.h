#pragma once
// A tasklet's wait for a connection's (or listener's) one-shot notification,
// through the engine's one wait (await_completion): the notification is the
// completion; giving the wait up (kill, deadline, IO stop) withdraws it on the
// IO thread (unsubscribe posts there: cancel may run under IoPool's lock),
// which runs it as cancelled. GIL held, in a tasklet.

#include <cstdint>
#include <memory>
#include <system_error>

#include "notified_wait.h"
#include "shard/engine/await_completion.h"

namespace shard::net {

// subscribe(notify) -> token; unsubscribe(token) runs notify if still pending.
template <class Subscribe, class Unsubscribe>
std::error_code wait_notified(Subscribe subscribe, Unsubscribe unsubscribe, int64_t deadline_ns) {
  auto state = std::make_shared<NotifiedWait>();
  auto start = [&](engine::Completer done) {
    state->subscribed(subscribe([state, done] { done(state->outcome()); }), unsubscribe);
  };
  // Called from the waiting thread or IoPool::stop(); never into the pool.
  // Only while await_completion() runs (the pool keeps a pointer to it, no
  // copy), so it may refer to this frame: two pointers fit in the
  // std::function itself, which then allocates nothing.
  engine::CancelFn cancel = [state = state.get(), &unsubscribe] {
    if (const std::uint64_t token = state->give_up(); token != 0) unsubscribe(token);
  };
  return engine::await_completion(start, cancel, deadline_ns);
}

// The wait on a Connection's or Listener's notification:
// `subscribe(source, notify)` registers it (notify_readable, notify_sent,
// notify_acceptable); giving up withdraws it on the source's IO thread.
template <class Source, class Subscribe>
std::error_code wait_on(const std::shared_ptr<Source>& source, Subscribe subscribe, int64_t deadline_ns) {
  return wait_notified([&](typename Source::Notify notify) { return subscribe(*source, std::move(notify)); },
                       [source](std::uint64_t token) { source->cancel_notify_later(token); }, deadline_ns);
}

}  // namespace shard::net
