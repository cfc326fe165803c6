#pragma once
// The state both kinds of notified wait share (wait_notify.h's one-shot wait,
// connection_waiter.h's reusable one): a one-shot notification registered on
// an IO object (its token) and the tasklet's giving up (kill, deadline, IO
// stop), which may come before the registration does. Whoever comes second
// withdraws the notification; the notification, when it runs, reads whether
// the wait was given up.

#include <atomic>
#include <cstdint>
#include <mutex>
#include <system_error>

namespace shard::net {

class NotifiedWait final {
 public:
  // After the notification was registered under `token`: if the wait was
  // given up first, `withdraw(token)` runs now (the notification then runs as
  // cancelled).
  template <class Withdraw>
  void subscribed(std::uint64_t token, Withdraw withdraw) {
    bool cancelled;
    {
      std::lock_guard lock(mutex_);
      token_ = token;
      cancelled = cancelled_;
    }
    if (cancelled) withdraw(token);
  }

  // The tasklet gives up: the notification's token to withdraw, or 0 when it
  // is not registered yet (subscribed() then withdraws it).
  std::uint64_t give_up() {
    gave_up_.store(true);
    std::lock_guard lock(mutex_);
    cancelled_ = true;
    return token_;
  }

  // What the notification completes the wait with.
  std::error_code outcome() const {
    return gave_up_.load() ? std::make_error_code(std::errc::operation_canceled) : std::error_code{};
  }

  // For reuse, once nothing else refers to it.
  void reset() {
    token_ = 0;
    cancelled_ = false;
    gave_up_.store(false, std::memory_order_relaxed);
  }

 private:
  std::mutex mutex_;         // token_ and cancelled_, between subscribed() and give_up()
  std::uint64_t token_ = 0;  // 0: not registered yet
  bool cancelled_ = false;
  std::atomic<bool> gave_up_{false};  // read by the notification
};

}  // namespace shard::net
