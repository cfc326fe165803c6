#pragma once
// Incremental frame decoder for one connection's byte stream. Feed it whatever
// the socket delivered, split anywhere; take complete frames out with next().
//
// Contract:
// - A length field is checked against Limits::max_frame_bytes as soon as its 4
//   bytes are buffered, before the decoder waits for (or makes room for) the body.
//   The read buffer grows only by bytes that actually arrived (prepare(n) with the
//   caller's read size), so a lying length costs nothing.
// - A compressed payload's declared size is checked against
//   Limits::max_decompressed_bytes before it is allocated or inflated.
// - Steady state allocates nothing: the read buffer and the decompression buffer
//   are reused; a Frame's payload is a view into one of them.
// - Any violation throws ProtocolError and the decoder stays failed: the caller
//   closes the connection (further calls throw kDecoderFailed).
// - Not thread-safe: one decoder per connection, used by its IO thread.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <boost/container/vector.hpp>

#include "shard/netproto/codec_config.h"
#include "shard/netproto/frame_header.h"

namespace shard::netproto {

class Decompressor;

struct Frame {
  FrameHeader header;  // header.codec says how the payload travelled
  // The payload, decompressed. Valid until the next non-const call on the decoder.
  std::span<const std::uint8_t> payload;
};

class FrameDecoder final {
 public:
  explicit FrameDecoder(const DecoderConfig& config = {});
  ~FrameDecoder();
  FrameDecoder(const FrameDecoder&) = delete;
  FrameDecoder& operator=(const FrameDecoder&) = delete;

  // Zero-copy read: a writable span of exactly n bytes at the end of the buffer
  // for the socket to read into, then commit() what was written.
  std::span<std::uint8_t> prepare(std::size_t n);
  void commit(std::size_t n);

  // Copying convenience: prepare + memcpy + commit.
  void feed(std::span<const std::uint8_t> bytes);

  // The next complete frame, or nullopt until more bytes arrive.
  std::optional<Frame> next();

  // Call at end of stream: throws ProtocolError(kTruncated) if a partial frame
  // is buffered.
  void finish() const;

  // After the handshake: which codecs incoming frames may use.
  void set_allowed_codecs(std::uint8_t codecs) noexcept { config_.allowed_codecs = codecs; }

  std::size_t buffered() const noexcept { return end_ - begin_; }
  // Bytes held in buffers (read buffer + decompression buffer).
  std::size_t capacity() const noexcept;
  bool failed() const noexcept { return failed_; }

 private:
  void check_length(std::uint32_t length);
  void make_room(std::size_t n);

  DecoderConfig config_;
  // Grown default-initialised (Boost.Container's default_init): a connection
  // prepares read_size (64 KiB) for every read, but small packets write only
  // its first page, so the rest stays untouched and costs no resident memory
  // (a zero-filled std::vector made all 64 KiB resident for every client).
  using Buffer = boost::container::vector<std::uint8_t>;
  Buffer buffer_;
  std::size_t begin_ = 0;  // first unconsumed byte
  std::size_t end_ = 0;    // one past the last received byte
  bool failed_ = false;
  std::unique_ptr<Decompressor> decompressor_;  // created at the first compressed frame
};

}  // namespace shard::netproto
