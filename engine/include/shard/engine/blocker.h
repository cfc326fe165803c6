#pragma once
// What a blocked tasklet waits in (today: a channel's queue), as the core sees
// it. The core must sometimes run a blocked tasklet anyway — to kill it, throw
// into it, or hand it an error meant for main — and asks its blocker to let go,
// without knowing what the blocker is.

namespace shard::engine {

struct Tasklet;

class Blocker {
 public:
  // Takes `t` out of the blocker, drops whatever it was passing, and makes it
  // runnable in its own thread. GIL held; runs no Python code.
  virtual void release(Tasklet* t) = 0;
  // What the deadlock error says when the main tasklet waits here and nothing
  // can ever wake it (Stackless words it by what main was doing).
  virtual const char* deadlock_message(const Tasklet* main) const = 0;

 protected:
  ~Blocker() = default;
};

}  // namespace shard::engine
