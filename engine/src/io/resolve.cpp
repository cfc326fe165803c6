#include "shard/engine/resolve.h"

#include <memory>

#include "shard/engine/asio.h"
#include "shard/engine/io_pool.h"

namespace shard::engine {
namespace {

namespace asio = boost::asio;
using Endpoints = std::vector<ResolvedEndpoint>;

struct Lookup {  // shared by the tasklet, the handler and cancel()
  explicit Lookup(std::shared_ptr<asio::io_context> c) : context(std::move(c)), resolver(*context) {}
  std::shared_ptr<asio::io_context> context;  // outlives the resolver
  asio::ip::tcp::resolver resolver;
  bool cancelled = false;  // touched on the context's thread only
};

}  // namespace

Outcome<Endpoints> resolve(const std::string& host, const std::string& service, int64_t deadline_ns) {
  auto context = IoPool::instance().next_context();
  if (context == nullptr) return {WaitError::kStopped, std::nullopt};
  std::shared_ptr<Lookup> lookup;
  try {
    lookup = std::make_shared<Lookup>(std::move(context));
  } catch (const std::bad_alloc&) {
    return {std::make_error_code(std::errc::not_enough_memory), std::nullopt};
  }
  auto start = [=](TypedCompleter<Endpoints> done) {
    asio::post(*lookup->context, [=] {
      if (lookup->cancelled) return done(std::make_error_code(std::errc::operation_canceled));
      lookup->resolver.async_resolve(
          host, service, [=](const boost::system::error_code& error, const asio::ip::tcp::resolver::results_type& found) {
            if (error) return done(to_error_code(error));  // on the IO thread: no Python here
            Endpoints endpoints;
            for (const auto& entry : found) {
              endpoints.push_back({entry.endpoint().address().to_string(), entry.endpoint().port()});
            }
            done(std::move(endpoints));
          });
    });
  };
  auto cancel = [lookup] {
    asio::post(*lookup->context, [lookup] {
      lookup->cancelled = true;
      lookup->resolver.cancel();
    });
  };
  return await_result<Endpoints>(start, cancel, deadline_ns);
}

}  // namespace shard::engine
