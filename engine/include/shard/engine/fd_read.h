#pragma once
// Reads one length-framed packet (a 4-byte big-endian length, then that many
// bytes) from a descriptor the engine does not own, on an IO thread, while
// only the calling tasklet waits: the framing of a tasklet socket's
// recvpacket() (engine/python/tasklet_sockets/stacklessio.py) done off the
// interpreter. The descriptor is dup()ed and the copy read through Asio, as
// fd_wait.h does for readiness; it must already be non-blocking (Asio would
// otherwise set O_NONBLOCK on the open file description it shares).
//
// A wait given up (killed tasklet, deadline) cancels the read; bytes it had
// already taken are gone, so the stream is out of step: close it.

#include <cstdint>
#include <vector>

#include "shard/engine/await_completion.h"

namespace shard::engine {

struct PacketRead {
  enum class End {
    kPacket,     // `payload` holds it
    kEof,        // the end of the stream before a packet began
    kEofInside,  // the end of the stream inside a packet
    kTooLarge,   // its length (`size`) is over the limit: nothing more was read
  };
  End end = End::kPacket;
  uint32_t size = 0;
  std::vector<uint8_t> payload;
};

// GIL held, in a tasklet. Errors: WaitError (kTimedOut at deadline_ns, 0:
// none), the read's (ECONNRESET, EBADF for a closed descriptor), dup()'s.
Outcome<PacketRead> read_packet(int fd, uint32_t max_size, int64_t deadline_ns);

}  // namespace shard::engine
