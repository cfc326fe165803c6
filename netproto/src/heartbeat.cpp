#include "shard/netproto/heartbeat.h"

#include <vector>

#include "shard/netproto/connection.h"
#include "shard/netproto/message_codec.h"

namespace shard::netproto {

void answer_heartbeats(NativeHandlers& handlers) {
  handlers.set(MessageKind::kHeartbeat, [](Connection& connection, const Frame& frame) {
    wire::Heartbeat beat;
    try {
      parse_message(frame, beat);
    } catch (const ProtocolError& e) {
      return connection.close(CloseReason::kProtocolError, e.what());
    }
    if (beat.echo()) return;
    beat.set_echo(true);
    std::vector<std::uint8_t> payload(beat.ByteSizeLong());
    beat.SerializeWithCachedSizesToArray(payload.data());
    FrameHeader header;
    header.kind = MessageKind::kHeartbeat;
    header.priority = Priority::kControl;
    connection.send(header, payload);
  });
}

}  // namespace shard::netproto
