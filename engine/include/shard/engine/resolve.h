#pragma once
// A name lookup on the IO threads (Asio's resolver): only the calling tasklet
// waits. The worked example of a blocking operation on the reactor seam
// (docs/engine.md), and what the network layer resolves with.

#include <cstdint>
#include <string>
#include <vector>

#include "shard/engine/await_completion.h"

namespace shard::engine {

struct ResolvedEndpoint {
  std::string address;  // numeric, v4 or v6
  uint16_t port = 0;
};

// GIL held, in a tasklet. Errors: the resolver's (std::system_category for
// errno values; Asio's netdb/addrinfo categories otherwise), or WaitError.
Outcome<std::vector<ResolvedEndpoint>> resolve(const std::string& host, const std::string& service,
                                               int64_t deadline_ns);

}  // namespace shard::engine
