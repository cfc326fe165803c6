#include "io/io_batch.h"

#include <exception>

#include "shard/engine/asio.h"
#include "shard/engine/dispatcher.h"

namespace shard::engine {

namespace {
thread_local IoBatch* current_batch = nullptr;
}  // namespace

IoBatch* IoBatch::current() noexcept { return current_batch; }

void IoBatch::set_current(IoBatch* batch) noexcept { current_batch = batch; }

void IoBatch::signal_later(Dispatcher& dispatcher) noexcept {
  due_ = &dispatcher;
  if (posted_) return;
  try {
    boost::asio::post(context_, [this] { signal_now(); });
    posted_ = true;
  } catch (const std::exception&) {
    signal_now();  // no memory for the handler: wake now rather than never
  }
}

void IoBatch::signal_now() noexcept {
  posted_ = false;
  Dispatcher* due = due_;
  due_ = nullptr;
  if (due != nullptr) due->signal();
}

}  // namespace shard::engine
