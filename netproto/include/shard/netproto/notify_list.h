#pragma once
// The one-shot notifications that wait on a connection or a listener: each
// has a token (to withdraw it) and a key (what it waits for: a connection's
// "a packet is queued" is key 0, "written up to sequence n" is key n; a
// listener's only one is 0). The owner holds its own mutex around every call
// and runs what it took only after releasing it (run_all), so a notification
// may call back into its owner.

#include <boost/container/small_vector.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>

namespace shard::netproto {

// A notification that outlives one wait: a tasklet's waiter kept by its
// connection object and registered again for each wait. Registering it copies
// a shared_ptr; a std::function holding an owning capture is a heap object
// made on the waiting thread and freed on the IO thread, per wait.
class Waiter {
 public:
  virtual void notify() noexcept = 0;

 protected:
  ~Waiter() = default;
};

// One notification: a Waiter shared with its owner, or a function (held in
// a Waiter of its own). One pointer and its count, so that taking it out of
// the list and running it is a few moves on every packet; a std::function
// beside the pointer made each of those moves and destructions several
// times the work.
class Notify final {
 public:
  Notify() = default;
  Notify(std::nullptr_t) noexcept {}
  Notify(std::shared_ptr<Waiter> waiter) noexcept : waiter_(std::move(waiter)) {}
  template <class F, class = std::enable_if_t<std::is_invocable_v<std::decay_t<F>&> &&
                                               !std::is_same_v<std::decay_t<F>, Notify> &&
                                               !std::is_convertible_v<F, std::shared_ptr<Waiter>>>>
  Notify(F&& function) : waiter_(std::make_shared<FunctionWaiter<std::decay_t<F>>>(std::forward<F>(function))) {}

  void operator()() const noexcept { waiter_->notify(); }
  explicit operator bool() const noexcept { return waiter_ != nullptr; }

 private:
  template <class F>
  class FunctionWaiter final : public Waiter {
   public:
    explicit FunctionWaiter(F function) : function_(std::move(function)) {}
    void notify() noexcept override { function_(); }

   private:
    F function_;
  };
  std::shared_ptr<Waiter> waiter_;
};

class NotifyList final {
 public:
  using Notify = netproto::Notify;
  // The notifications one event made due, taken under the owner's mutex and
  // run after it. Usually one (the tasklet waiting on the connection): kept
  // on the caller's stack, which is warm, unlike a list kept per connection
  // (a cache miss per packet at 1,000 connections).
  using Due = boost::container::small_vector<Notify, 2>;

  std::uint64_t next_token() noexcept { return next_token_++; }
  void add(std::uint64_t token, std::uint64_t key, Notify notify) {
    entries_.push_back({token, key, std::move(notify)});
  }
  // Moves every notification whose key satisfies `due(key)` into `out`, in
  // the order they were added.
  template <class IsDue>
  void take_due(IsDue due, Due& out) {
    std::size_t kept = 0;
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      if (due(entries_[i].key)) {
        out.push_back(std::move(entries_[i].notify));
      } else if (kept++ != i) {
        entries_[kept - 1] = std::move(entries_[i]);
      }
    }
    entries_.resize(kept);
  }
  void take_all(Due& out) {
    take_due([](std::uint64_t) { return true; }, out);
  }
  // The notification with `token`, withdrawn; empty when it already ran.
  Notify take(std::uint64_t token) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->token != token) continue;
      Notify notify = std::move(it->notify);
      entries_.erase(it);
      return notify;
    }
    return nullptr;
  }
  // Runs them and empties `due` (capacity kept), so no reference to a
  // Waiter stays behind.
  static void run_all(Due& due) noexcept {
    for (Notify& notify : due) notify();
    due.clear();
  }

 private:
  struct Entry {
    std::uint64_t token;
    std::uint64_t key;
    Notify notify;
  };
  // Inline room for the usual one or two waiters: they sit in their owner's
  // object, not in a heap block of their own that each packet touches.
  boost::container::small_vector<Entry, 2> entries_;
  std::uint64_t next_token_ = 1;
};

}  // namespace shard::netproto
