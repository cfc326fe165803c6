#pragma once
// Heartbeats answered on the IO thread (docs/protocol.md, "Message flow"): a
// Heartbeat with echo = false goes back with echo = true, the same nonce and
// sent_us, at priority control; an echo is dropped. No Python wakes for a
// peer's keep-alive.

#include "shard/netproto/native_handlers.h"

namespace shard::netproto {

void answer_heartbeats(NativeHandlers& handlers);

}  // namespace shard::netproto
