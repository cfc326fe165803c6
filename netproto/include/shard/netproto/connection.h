#pragma once
// One peer's connection on an Asio io_context (an IO thread's): the IO thread
// reads ahead, frames and decompresses whatever arrives (FrameDecoder) and
// queues complete packets for the consumer; the consumer (any thread: the
// shard's main thread) queues sends and returns at once, and the IO thread
// writes every queued frame in one write. The send queue is one byte buffer
// holding the frames as they go on the wire (the consumer's copy is the only
// one): the IO thread swaps it for its own empty one and writes it as it is,
// so a send allocates nothing once both buffers have grown; only frames big
// enough to compress, on a connection with a codec, are re-encoded
// (FrameEncoder) into a second buffer on the IO thread. A plain TCP write is
// first tried at once (the socket is non-blocking), and what the kernel did
// not take goes to Asio's async_write. No Python here, and no engine: whoever waits for a
// packet registers a one-shot notification (notify_readable) and waits for it
// its own way.
//
// The receive queue mirrors it: the IO thread appends a read's packets to one
// byte buffer (packet_buffer.h), handed over whole; the consumer swaps the
// queue's buffer for its own emptied one and takes packets from it in order
// (receive()), so a received packet allocates nothing either.
//
// Bounds: the receive queue holds at most max_recv_packets and
// max_recv_bytes, give or take one read's frames (reading pauses while it is
// full: TCP's window then slows the peer); the send queue holds at
// most max_send_bytes (a peer that does not read is cut off: kBackpressure).
// An idle connection (no byte received for idle_timeout) is closed. Any
// protocol error closes this connection only, with a typed, logged reason.
//
// Packets of a kind with a native handler (native_handlers.h) are handed to it
// on the IO thread and never queued.
//
// The stream is plain TCP or TLS over it (stream.h), chosen by the handshake
// (handshake.h) that ran on the socket before the Connection was made; only
// the reads and write_() touch it, and TLS records are sealed and opened on
// the IO thread. A TLS stream reads with async_read_some; a plain one waits in
// its IO thread's edge-triggered read set (read_poller.h: no recv() that
// finds nothing) unless config.poll_reads is off.
//
// Thread-safe: every public member may be called from any thread.

#include <utility>  // before Asio: Boost 1.74's Asio with GCC 12 in C++20 needs it

#include <boost/asio.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "shard/netproto/codec_config.h"
#include "shard/netproto/frame_decoder.h"
#include "shard/netproto/frame_encoder.h"
#include "shard/netproto/frame_header.h"
#include "shard/netproto/negotiated.h"
#include "shard/netproto/notify_list.h"
#include "shard/netproto/packet_buffer.h"
#include "shard/netproto/stream.h"

namespace shard::netproto {

class NativeHandlers;
class ReadPoller;

// Why a connection closed (first reason wins).
enum class CloseReason : std::uint8_t {
  kOpen = 0,        // not closed
  kLocal,           // close() by its owner
  kPeerClosed,      // the peer ended the stream at a frame boundary
  kIdleTimeout,     // nothing received for idle_timeout
  kBackpressure,    // the send queue passed max_send_bytes: the peer does not read
  kTooLarge,        // a frame over the limits (ProtocolError kOversized / kDecompressedTooLarge)
  kProtocolError,   // any other ProtocolError (truncated, garbage header, bad codec...)
  kIoError,         // the socket failed (reset, ...)
  kStopped,         // the IO context stopped
};
std::string_view to_string(CloseReason reason) noexcept;

struct ConnectionConfig {
  DecoderConfig decoder;
  EncoderConfig encoder;
  std::size_t max_recv_packets = 4096;        // read-ahead bounds: reading pauses at
  std::size_t max_recv_bytes = 16u << 20;     // either (payload bytes, decompressed)
  std::size_t max_send_bytes = 16u << 20;     // queued payload bytes before the peer is cut off
  std::chrono::milliseconds idle_timeout{0};  // 0: none
  std::size_t read_size = 64u << 10;          // bytes asked of one read
  bool poll_reads = true;                     // plain TCP: read through the IO thread's read set
  // Where close reasons go (one line each); default: stderr.
  std::function<void(const std::string&)> log;
  // What the handshake agreed (configure() in handshake.h sets it with the
  // codec and limits above).
  Negotiated negotiated;
};

struct Packet {
  FrameHeader header;
  std::vector<std::uint8_t> payload;  // decompressed
};

class Connection final : public std::enable_shared_from_this<Connection> {
 public:
  using Socket = Stream::Socket;
  using Notify = NotifyList::Notify;
  using OnClose = std::function<void(Connection&)>;

  // `stream` is open (its handshake done) and bound to its IO thread's
  // context. Call start() once.
  static std::shared_ptr<Connection> create(Stream stream, ConnectionConfig config,
                                            std::shared_ptr<const NativeHandlers> native = nullptr);
  static std::shared_ptr<Connection> create(Socket socket, ConnectionConfig config,
                                            std::shared_ptr<const NativeHandlers> native = nullptr) {
    return create(Stream(std::move(socket)), std::move(config), std::move(native));
  }
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Posts the first read (and the idle timer). `on_close` runs once, on the IO
  // thread, after the connection closed (the listener's per-address count).
  void start(OnClose on_close = nullptr);

  // Queues one frame, its payload copied (gathered from `parts`, in order),
  // and returns at once; the IO thread frames, compresses and writes it.
  // kBackpressure: this send passed max_send_bytes and the connection is now
  // closed. The frame's sequence number (from 1) goes to *seq when given.
  enum class SendResult { kQueued, kClosed, kTooLarge, kBadHeader, kBackpressure };
  SendResult send(const FrameHeader& header, std::span<const std::span<const std::uint8_t>> parts,
                  std::uint64_t* seq = nullptr);
  SendResult send(const FrameHeader& header, std::span<const std::uint8_t> payload) {
    return send(header, std::span<const std::span<const std::uint8_t>>(&payload, 1));
  }
  // The largest payload send() takes: what the peer's limits accept plain.
  std::size_t max_payload() const noexcept;

  // The oldest queued packet, if any (never waits), copied out.
  std::optional<Packet> try_receive();
  // The same without a copy: `take(const FrameHeader&, std::span<const
  // std::uint8_t> payload)` runs on the calling thread with the oldest queued
  // packet, which is then gone (even if `take` throws); the span is valid
  // only during the call. Consumers are served one at a time (take runs under
  // a lock the IO thread never takes, so it may copy a big payload without
  // stalling reads). False: none queued; then *closed (when given) says
  // whether the connection is closed too, so none will come.
  template <class Take>
  bool receive(Take&& take, bool* closed = nullptr) {
    // Nothing queued on an open connection, what a consumer about to wait
    // usually finds: known without either lock. A packet or a close that
    // comes meanwhile is found by the wait's registration (notify_readable
    // checks under the lock and notifies at once).
    if (received_packets_.load(std::memory_order_acquire) == 0 && !closing_.load(std::memory_order_acquire)) {
      if (closed != nullptr) *closed = false;
      return false;
    }
    std::lock_guard lock(take_mutex_);
    const PacketBuffer::Entry* entry = next_received_(lock, closed);
    if (entry == nullptr) return false;
    struct ReleaseWhenTaken {  // also when `take` throws
      Connection& self;
      ~ReleaseWhenTaken() { self.release_taken_(); }
    } release{*this};
    take(entry->header, taking_.payload(*entry));
    return true;
  }

  // One-shot: `notify` runs (on some thread, without this connection's lock)
  // once a packet is queued or the connection closes; at once, on the calling
  // thread, if that is so already. Returns a token for cancel_notify().
  std::uint64_t notify_readable(Notify notify);
  // Likewise once every frame up to `seq` has been written, or on close.
  std::uint64_t notify_sent(std::uint64_t seq, Notify notify);
  // Withdraws a notification and runs it now (a waiter gave up: it must end
  // its wait); a no-op if it already ran.
  void cancel_notify(std::uint64_t token);
  // The same on the IO thread, for a caller that must not run the
  // notification itself (one holding another lock, as IoPool::stop() does).
  void cancel_notify_later(std::uint64_t token);

  // Closes with `reason` (the first reason wins): the socket is closed on the
  // IO thread, queued packets stay readable, waiters are notified.
  void close(CloseReason reason = CloseReason::kLocal, const std::string& detail = {});

  CloseReason close_reason() const;
  std::string close_detail() const;  // the logged text
  bool closed() const { return close_reason() != CloseReason::kOpen; }
  std::uint64_t written_seq() const;  // frames written so far
  // The IO thread's context it lives on.
  boost::asio::io_context& context() const { return context_; }
  std::string remote_address() const { return remote_; }
  std::uint16_t remote_port() const { return remote_port_; }
  // The codec frames are sent with and those accepted (the handshake sets
  // them through the config; this changes them on a running connection).
  void set_codec(Codec send, std::uint8_t accepted);
  // What the handshake agreed (version 0: none ran).
  const Negotiated& negotiated() const noexcept { return config_.negotiated; }

  struct Stats {
    std::uint64_t packets_in = 0, packets_out = 0, bytes_in = 0, bytes_out = 0;
    std::uint64_t writes = 0;          // write calls (frames_out / writes = the batching)
    std::uint64_t native_packets = 0;  // handed to a native handler on the IO thread
    std::size_t recv_queued = 0, send_queued_bytes = 0;
  };
  Stats stats() const;
  // Connections alive in this process (the leak checks).
  static std::size_t instances() noexcept { return instances_.load(std::memory_order_relaxed); }
  // Every connection of this process together, closed ones included, since
  // it started (what an operator's /metrics counts): bytes as on the wire,
  // packets whether queued or handed to a native handler.
  struct Totals {
    std::uint64_t packets_in = 0, packets_out = 0, bytes_in = 0, bytes_out = 0;
  };
  static Totals totals() noexcept;

 private:
  static inline std::atomic<std::size_t> instances_{0};
  // Added to once per read and per write (a batch of frames), not per packet.
  static inline std::atomic<std::uint64_t> total_packets_in_{0}, total_packets_out_{0}, total_bytes_in_{0},
      total_bytes_out_{0};
  Connection(Stream stream, ConnectionConfig config, std::shared_ptr<const NativeHandlers> native);

  friend class ReadPoller;  // calls on_readable_()
  // The post of write_(), at most one in flight (write_posted_): Asio makes
  // its operation in write_post_bytes_ instead of on the heap (a send from
  // the main thread would malloc there and free on the IO thread each time).
  template <class T>
  class WritePostAllocator;  // connection.cpp
  struct WritePost;
  void post_write_();

  // The consumer's next packet, in taking_ (null: none); under take_mutex_.
  const PacketBuffer::Entry* next_received_(const std::lock_guard<std::mutex>& taking, bool* closed);
  // After a take, under take_mutex_: once every packet of taking_ is taken,
  // it is emptied and a burst's big buffers are let go. Here, not when a
  // consumer next finds the queue empty: that answer comes from receive()'s
  // lock-free check, which never reaches the buffers.
  void release_taken_() {
    if (taking_next_ != taking_.packets()) return;
    taking_.clear();
    taking_next_ = 0;
    taking_.trim(config_.decoder.retain_buffer_bytes, kKeptPackets);
  }

  // IO thread only.
  void read_();
  // The read set says the socket has bytes; `ended`: its end or an error too.
  void on_readable_(bool ended);
  void stop_polling_();
  void on_read_(const boost::system::error_code& error, std::size_t n);
  bool drain_frames_(std::size_t n, bool& paused);  // commits n read bytes  // false: failed and closed; paused: the queue is full
  void write_();
  bool take_queued_();                        // false: nothing queued (write_posted_ cleared)
  std::span<const std::uint8_t> encode_taken_();  // the bytes to write (taken_, or out_ if compressed)
  bool written_();                            // after a whole write; true: more is queued
  void on_written_(const boost::system::error_code& error);
  void arm_idle_timer_();
  void shutdown_();  // closes the socket and timer, runs on_close

  // Under mutex_: takes the waiters that are due; whether key `seq` is due.
  void take_due_(NotifyList::Due& due);
  bool due_locked_(std::uint64_t seq) const;
  void close_locked_(CloseReason reason, const std::string& detail, NotifyList::Due& due);

  Stream socket_;  // TCP, or TLS over it
  boost::asio::io_context& context_;  // socket_'s
  boost::asio::steady_timer idle_timer_;
  ConnectionConfig config_;
  std::shared_ptr<const NativeHandlers> native_;
  std::string remote_;
  std::uint16_t remote_port_ = 0;

  // IO thread only.
  ReadPoller* poller_ = nullptr;  // the read set, while the socket is in it
  std::uint32_t poll_slot_ = 0;   // its place there
  FrameDecoder decoder_;
  FrameEncoder encoder_;
  std::vector<std::uint8_t> taken_;            // the queue's frames being written (swapped with queued_)
  std::vector<std::size_t> taken_compress_;    // their offsets in taken_ of frames to compress
  std::size_t taken_frames_ = 0, taken_payload_ = 0;
  std::vector<std::uint8_t> out_;              // taken_ re-encoded, when some frame compresses
  std::atomic<Codec> send_codec_;              // what set_codec() last chose (read by send())
  static constexpr std::size_t kKeptPackets = 1024;  // a packet buffer's table kept between bursts
  PacketBuffer framed_;  // one read's packets, on their way to received_ (swapped in when it is empty)
  std::chrono::steady_clock::time_point last_read_;
  OnClose on_close_;
  bool shut_ = false;

  // The consumers' side of the receive queue (taken before mutex_, never by
  // the IO thread).
  std::mutex take_mutex_;
  PacketBuffer taking_;          // the queue's packets the consumers took over
  std::size_t taking_next_ = 0;  // the first of them not taken yet

  mutable std::mutex mutex_;  // what follows
  PacketBuffer received_;           // queued packets the consumers have not taken over
  // Queued in all (taking_'s not yet taken too); changed under mutex_, read
  // without it by receive()'s empty check.
  std::atomic<std::size_t> received_packets_{0};
  std::size_t received_bytes_ = 0;
  std::vector<std::uint8_t> queued_;          // queued frames, framed as plain (codec none)
  std::vector<std::size_t> queued_compress_;  // offsets in queued_ of frames the IO thread compresses
  std::size_t queued_frames_ = 0;
  std::size_t send_bytes_ = 0;  // payload bytes queued + being written
  bool write_posted_ = false;   // a write_() is posted or in flight
  alignas(std::max_align_t) unsigned char write_post_bytes_[128];
  std::atomic<bool> write_post_used_{false};
  bool read_paused_ = false;    // the receive queue was full
  std::uint64_t next_seq_ = 1, written_seq_ = 0;
  NotifyList waiters_;  // key 0: readable; else sent up to that sequence number
  CloseReason reason_ = CloseReason::kOpen;
  std::atomic<bool> closing_{false};  // reason_ is set (read by receive()'s empty check)
  std::string detail_;
  Stats stats_;
};

}  // namespace shard::netproto
