#include "shard/engine/fd_wait.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "shard/engine/asio.h"
#include "shard/engine/io_pool.h"

namespace shard::engine {
namespace {

namespace asio = boost::asio;
using Descriptor = asio::posix::stream_descriptor;

// Shared by the tasklet (start, cancel), the posted initiation and every
// handler. Apart from `copies` before the initiation, touched on the
// context's thread only.
struct FdWait {
  explicit FdWait(std::shared_ptr<asio::io_context> c) : context(std::move(c)) {}
  ~FdWait() {
    for (const FdInterest& copy : copies) {
      if (copy.fd >= 0) ::close(copy.fd);  // never handed to a descriptor
    }
  }
  FdWait(const FdWait&) = delete;
  FdWait& operator=(const FdWait&) = delete;

  // Cancels the waits still queued; their handlers run with operation_aborted.
  void cancel_all() {
    boost::system::error_code ignored;
    for (auto& d : descriptors) d->cancel(ignored);
  }

  std::shared_ptr<asio::io_context> context;  // declared first: outlives the descriptors
  std::vector<FdInterest> copies;             // the dup()s; fd -1 once a descriptor owns it
  std::vector<std::unique_ptr<Descriptor>> descriptors;
  int outstanding = 0;      // async_waits whose handler has not run
  bool cancelled = false;   // a cancel that ran before the initiation
};

// The handler of one async_wait: the first outcome wins (done ignores the
// rest); the last handler to run closes the copies, on the context's thread,
// where their reactor registration lives.
void on_wait(const std::shared_ptr<FdWait>& wait, const Completer& done, const boost::system::error_code& error) {
  if (!error || error == asio::error::operation_not_supported) {
    done({});  // ready; or a descriptor epoll cannot watch (a regular file): never blocks
  } else {
    done(to_error_code(error));  // operation_aborted: cancelled (killed, deadline, IO stop)
  }
  wait->cancel_all();
  if (--wait->outstanding == 0) wait->descriptors.clear();
}

void start_waits(const std::shared_ptr<FdWait>& wait, const Completer& done) {
  if (wait->cancelled) return done(std::make_error_code(std::errc::operation_canceled));
  for (FdInterest& copy : wait->copies) {
    auto descriptor = std::make_unique<Descriptor>(*wait->context);
    boost::system::error_code error;
    descriptor->assign(copy.fd, error);  // registers the copy with the reactor
    if (error) {
      done(to_error_code(error));
      wait->cancel_all();
      break;
    }
    copy.fd = -1;
    const short events = copy.events;
    auto handler = [wait, done](const boost::system::error_code& e) { on_wait(wait, done, e); };
    if (events & POLLIN) {
      descriptor->async_wait(Descriptor::wait_read, handler);
      ++wait->outstanding;
    }
    if (events & POLLOUT) {
      descriptor->async_wait(Descriptor::wait_write, handler);
      ++wait->outstanding;
    }
    if (events & POLLPRI) {
      descriptor->async_wait(Descriptor::wait_error, handler);
      ++wait->outstanding;
    }
    wait->descriptors.push_back(std::move(descriptor));
  }
  if (wait->outstanding == 0) wait->descriptors.clear();
}

}  // namespace

std::error_code wait_ready(const std::vector<FdInterest>& interests, int64_t deadline_ns) {
  if (interests.empty()) return std::make_error_code(std::errc::invalid_argument);
  for (const FdInterest& interest : interests) {
    if ((interest.events & (POLLIN | POLLOUT | POLLPRI)) == 0) return std::make_error_code(std::errc::invalid_argument);
  }
  auto context = IoPool::instance().next_context();
  if (context == nullptr) return WaitError::kStopped;
  std::shared_ptr<FdWait> wait;
  try {
    wait = std::make_shared<FdWait>(std::move(context));
    wait->copies.reserve(interests.size());
    wait->descriptors.reserve(interests.size());
  } catch (const std::bad_alloc&) {
    return std::make_error_code(std::errc::not_enough_memory);
  }
  for (const FdInterest& interest : interests) {
    int copy = ::fcntl(interest.fd, F_DUPFD_CLOEXEC, 0);  // a child process must not inherit it
    if (copy < 0) return {errno, std::system_category()};  // EBADF: closed; EMFILE
    wait->copies.push_back({copy, interest.events});
  }
  auto start = [wait](Completer done) { asio::post(*wait->context, [wait, done] { start_waits(wait, done); }); };
  auto cancel = [wait] {
    asio::post(*wait->context, [wait] {
      wait->cancelled = true;
      wait->cancel_all();
    });
  };
  return await_completion(start, cancel, deadline_ns);
}

}  // namespace shard::engine
