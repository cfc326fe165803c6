#include "shard/netproto/connection.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>

#include "read_poller.h"
#include "shard/netproto/native_handlers.h"
#include "shard/netproto/protocol_error.h"

namespace shard::netproto {

namespace asio = boost::asio;

std::string_view to_string(CloseReason reason) noexcept {
  switch (reason) {
    case CloseReason::kOpen: return "open";
    case CloseReason::kLocal: return "closed locally";
    case CloseReason::kPeerClosed: return "peer closed";
    case CloseReason::kIdleTimeout: return "idle timeout";
    case CloseReason::kBackpressure: return "send queue full (peer not reading)";
    case CloseReason::kTooLarge: return "too large";
    case CloseReason::kProtocolError: return "protocol error";
    case CloseReason::kIoError: return "io error";
    case CloseReason::kStopped: return "stopped";
  }
  return "unknown";
}

template <class T>
class Connection::WritePostAllocator {
 public:
  using value_type = T;
  explicit WritePostAllocator(Connection* owner) noexcept : owner_(owner) {}
  template <class U>
  WritePostAllocator(const WritePostAllocator<U>& other) noexcept : owner_(other.owner_) {}

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes <= sizeof(owner_->write_post_bytes_) && alignof(T) <= alignof(std::max_align_t) &&
        !owner_->write_post_used_.exchange(true, std::memory_order_acquire)) {
      return reinterpret_cast<T*>(owner_->write_post_bytes_);
    }
    return static_cast<T*>(::operator new(bytes));  // bigger, or (never expected) a second post
  }
  void deallocate(T* p, std::size_t) noexcept {
    if (reinterpret_cast<unsigned char*>(p) == owner_->write_post_bytes_) {
      owner_->write_post_used_.store(false, std::memory_order_release);
    } else {
      ::operator delete(p);
    }
  }
  template <class U>
  bool operator==(const WritePostAllocator<U>& other) const noexcept {
    return owner_ == other.owner_;
  }
  template <class U>
  bool operator!=(const WritePostAllocator<U>& other) const noexcept {
    return owner_ != other.owner_;
  }

 private:
  template <class U>
  friend class WritePostAllocator;
  Connection* owner_;
};

// Asio frees the operation before it calls the handler (which holds the
// connection), so the slot is free again by the time write_() runs.
struct Connection::WritePost {
  std::shared_ptr<Connection> self;
  using allocator_type = WritePostAllocator<void>;
  allocator_type get_allocator() const noexcept { return allocator_type(self.get()); }
  void operator()() const { self->write_(); }
};

// Through the io_context's own executor: the socket's any_io_executor would
// wrap the handler in one more heap object and ignore its allocator.
void Connection::post_write_() { asio::post(context_.get_executor(), WritePost{shared_from_this()}); }

std::shared_ptr<Connection> Connection::create(Stream stream, ConnectionConfig config,
                                               std::shared_ptr<const NativeHandlers> native) {
  return std::shared_ptr<Connection>(new Connection(std::move(stream), std::move(config), std::move(native)));
}

Connection::Connection(Stream stream, ConnectionConfig config, std::shared_ptr<const NativeHandlers> native)
    : socket_(std::move(stream)),
      context_(static_cast<asio::io_context&>(socket_.get_executor().context())),
      idle_timer_(socket_.get_executor()),
      config_(std::move(config)),
      native_(std::move(native)),
      decoder_(config_.decoder),
      encoder_(config_.encoder),
      send_codec_(config_.encoder.codec) {
  boost::system::error_code error;
  auto remote = socket_.socket().remote_endpoint(error);
  if (!error) {
    remote_ = remote.address().to_string();
    remote_port_ = remote.port();
  }
  // One frame per write is the worst case; small frames should not wait for Nagle.
  socket_.socket().set_option(asio::ip::tcp::no_delay(true), error);
  // write_() tries a write at once; it must not block (TlsSocket sets it too).
  socket_.socket().non_blocking(true, error);
  instances_.fetch_add(1, std::memory_order_relaxed);
}

Connection::~Connection() { instances_.fetch_sub(1, std::memory_order_relaxed); }

Connection::Totals Connection::totals() noexcept {
  return {total_packets_in_.load(std::memory_order_relaxed), total_packets_out_.load(std::memory_order_relaxed),
          total_bytes_in_.load(std::memory_order_relaxed), total_bytes_out_.load(std::memory_order_relaxed)};
}

void Connection::start(OnClose on_close) {
  asio::post(socket_.get_executor(), [self = shared_from_this(), on_close = std::move(on_close)]() mutable {
    if (self->shut_) {  // closed before it started
      if (on_close) on_close(*self);
      return;
    }
    self->on_close_ = std::move(on_close);
    self->last_read_ = std::chrono::steady_clock::now();
    if (self->closed()) return self->shutdown_();
    self->read_();
    self->arm_idle_timer_();
  });
}

std::size_t Connection::max_payload() const noexcept {
  const Limits& limits = config_.encoder.limits;
  return std::min<std::size_t>(limits.max_decompressed_bytes, limits.max_frame_bytes - kHeaderBytes);
}

// --- the consumer's side ----------------------------------------------------

Connection::SendResult Connection::send(const FrameHeader& header,
                                        std::span<const std::span<const std::uint8_t>> parts, std::uint64_t* seq) {
  std::size_t size = 0;
  for (auto part : parts) size += part.size();
  // Framed here as it goes on the wire, plain; the IO thread re-encodes only
  // a frame its codec would compress (FrameEncoder's rule). write_prefix()
  // validates the header (once per send: it showed in profiles), all but the
  // codec it is given, which is checked here.
  FrameHeader plain = header;
  plain.codec = Codec::kNone;
  std::uint8_t prefix[kPrefixBytes];
  try {
    if (static_cast<unsigned>(header.codec) > static_cast<unsigned>(Codec::kZlib)) return SendResult::kBadHeader;
    write_prefix(prefix, plain, static_cast<std::uint32_t>(std::min<std::size_t>(size, UINT32_MAX)));
  } catch (const ProtocolError&) {
    return SendResult::kBadHeader;
  }
  if (size > max_payload()) return SendResult::kTooLarge;
  const bool compress = size >= config_.encoder.compress_threshold &&
                        send_codec_.load(std::memory_order_relaxed) != Codec::kNone;

  NotifyList::Due due;
  SendResult result = SendResult::kQueued;
  bool post = false;
  {
    std::lock_guard lock(mutex_);
    if (reason_ != CloseReason::kOpen) return SendResult::kClosed;
    if (send_bytes_ + size > config_.max_send_bytes) {
      close_locked_(CloseReason::kBackpressure,
                    "send queue would hold " + std::to_string(send_bytes_ + size) + " bytes, over the limit of " +
                        std::to_string(config_.max_send_bytes) + ": the peer does not read",
                    due);
      result = SendResult::kBackpressure;
    } else {
      // The copy is under the lock so that the queue stays one buffer (no
      // allocation per frame); the IO thread holds the lock only to swap it.
      if (compress) queued_compress_.push_back(queued_.size());
      queued_.insert(queued_.end(), prefix, prefix + kPrefixBytes);
      for (auto part : parts) queued_.insert(queued_.end(), part.begin(), part.end());
      ++queued_frames_;
      send_bytes_ += size;
      if (seq != nullptr) *seq = next_seq_;
      ++next_seq_;
      post = !write_posted_;
      write_posted_ = true;
    }
  }
  if (result == SendResult::kBackpressure) {
    NotifyList::run_all(due);
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->shutdown_(); });
    return result;
  }
  if (post) post_write_();
  return result;
}

std::optional<Packet> Connection::try_receive() {
  std::optional<Packet> packet;
  receive([&](const FrameHeader& header, std::span<const std::uint8_t> payload) {
    packet.emplace(Packet{header, {payload.begin(), payload.end()}});
  });
  return packet;
}

const PacketBuffer::Entry* Connection::next_received_(const std::lock_guard<std::mutex>&, bool* closed) {
  bool resume = false;
  const PacketBuffer::Entry* entry;
  {
    std::lock_guard lock(mutex_);
    // All of taking_ taken: release_taken_() emptied and trimmed it then.
    if (taking_next_ == taking_.packets()) {
      if (received_.empty()) {
        if (closed != nullptr) *closed = reason_ != CloseReason::kOpen;
        return nullptr;
      }
      // The emptied buffers go back for the IO thread to fill.
      taking_.swap(received_);
    }
    entry = &taking_.entry(taking_next_++);
    received_packets_.fetch_sub(1, std::memory_order_relaxed);
    received_bytes_ -= entry->size;
    // Reading resumes at half the bounds, so a full queue does not cost one
    // read per packet taken.
    if (read_paused_ && received_packets_ <= config_.max_recv_packets / 2 &&
        received_bytes_ <= config_.max_recv_bytes / 2 && reason_ == CloseReason::kOpen) {
      read_paused_ = false;
      resume = true;
    }
  }
  if (resume) asio::post(socket_.get_executor(), [self = shared_from_this()] { self->read_(); });
  return entry;
}

std::uint64_t Connection::notify_readable(Notify notify) { return notify_sent(0, std::move(notify)); }

std::uint64_t Connection::notify_sent(std::uint64_t seq, Notify notify) {
  std::uint64_t token;
  {
    std::lock_guard lock(mutex_);
    token = waiters_.next_token();
    if (!due_locked_(seq)) {
      waiters_.add(token, seq, std::move(notify));
      return token;
    }
  }
  notify();
  return token;
}

void Connection::cancel_notify(std::uint64_t token) {
  Notify notify;
  {
    std::lock_guard lock(mutex_);
    notify = waiters_.take(token);
  }
  if (notify) notify();
}

void Connection::cancel_notify_later(std::uint64_t token) {
  asio::post(socket_.get_executor(), [self = shared_from_this(), token] { self->cancel_notify(token); });
}

void Connection::close(CloseReason reason, const std::string& detail) {
  NotifyList::Due due;
  {
    std::lock_guard lock(mutex_);
    close_locked_(reason, detail, due);
  }
  NotifyList::run_all(due);
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->shutdown_(); });
}

CloseReason Connection::close_reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

std::string Connection::close_detail() const {
  std::lock_guard lock(mutex_);
  return detail_;
}

std::uint64_t Connection::written_seq() const {
  std::lock_guard lock(mutex_);
  return written_seq_;
}

void Connection::set_codec(Codec send, std::uint8_t accepted) {
  send_codec_.store(send, std::memory_order_relaxed);
  asio::post(socket_.get_executor(), [self = shared_from_this(), send, accepted] {
    self->encoder_.set_codec(send);
    self->decoder_.set_allowed_codecs(accepted);
  });
}

Connection::Stats Connection::stats() const {
  std::lock_guard lock(mutex_);
  Stats s = stats_;
  s.recv_queued = received_packets_;
  s.send_queued_bytes = send_bytes_;
  return s;
}

// --- under the lock ----------------------------------------------------------

void Connection::take_due_(NotifyList::Due& due) {
  waiters_.take_due([&](std::uint64_t seq) { return due_locked_(seq); }, due);
}

bool Connection::due_locked_(std::uint64_t seq) const {
  return reason_ != CloseReason::kOpen || (seq == 0 ? received_packets_ != 0 : written_seq_ >= seq);
}

void Connection::close_locked_(CloseReason reason, const std::string& detail, NotifyList::Due& due) {
  if (reason_ != CloseReason::kOpen) return;
  reason_ = reason;
  closing_.store(true, std::memory_order_release);
  detail_ = std::string(to_string(reason));
  if (!detail.empty()) detail_ += ": " + detail;
  queued_.clear();
  queued_compress_.clear();
  queued_frames_ = 0;
  take_due_(due);
  // The owner knows why; a peer's orderly close is no news.
  if (reason == CloseReason::kLocal || reason == CloseReason::kPeerClosed) return;
  const std::string line = "netproto: connection " + remote_ + ":" + std::to_string(remote_port_) + " closed: " + detail_;
  if (config_.log) {
    config_.log(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

// --- the IO thread ------------------------------------------------------------

void Connection::read_() {
  if (shut_ || poller_ != nullptr) return;  // in the read set: it reads when there are bytes
  if (config_.poll_reads && !socket_.tls()) {
    ReadPoller& poller = asio::use_service<ReadPoller>(context_);
    if (const std::error_code error = poller.add(socket_.socket().native_handle(), shared_from_this(), poll_slot_)) {
      return close(CloseReason::kIoError, "cannot watch the socket: " + error.message());
    }
    poller_ = &poller;
    return;
  }
  std::span<std::uint8_t> room;
  try {
    room = decoder_.prepare(config_.read_size);
  } catch (const std::exception& e) {
    return close(CloseReason::kIoError, std::string("no read buffer: ") + e.what());
  }
  socket_.async_read_some(asio::buffer(room.data(), room.size()),
                          [self = shared_from_this()](const boost::system::error_code& error, std::size_t n) {
                            self->on_read_(error, n);
                          });
}

void Connection::on_readable_(bool ended) {
  // The read set is edge-triggered: it reports the socket again only when
  // more bytes arrive. A read that comes back short of its buffer took all
  // the bytes the socket had (TCP fills a read from everything queued), so
  // the next edge is the next news; a full one may have left bytes behind,
  // read here. An end (or error) reported with the bytes is no further edge:
  // then this reads on until it meets it.
  // A sender that keeps the buffer full gets this many reads in a row, then
  // the other handlers on this IO thread get their turn.
  constexpr int kReadsInARow = 4;
  for (int round = 0; round < kReadsInARow; ++round) {
    if (shut_ || poller_ == nullptr) return;  // closed, or paused by a full receive queue
    std::span<std::uint8_t> room;
    try {
      room = decoder_.prepare(config_.read_size);
    } catch (const std::exception& e) {
      stop_polling_();
      return close(CloseReason::kIoError, std::string("no read buffer: ") + e.what());
    }
    boost::system::error_code error;
    const std::size_t n = socket_.socket().read_some(asio::buffer(room.data(), room.size()), error);
    if (error == asio::error::would_block) return;  // nothing after all: wait for the next edge
    on_read_(error, n);
    if (error || (n < room.size() && !ended)) return;
  }
  // Still full: no edge may come for what is left, so this reads on after them.
  asio::post(socket_.get_executor(), [self = shared_from_this(), ended] { self->on_readable_(ended); });
}

void Connection::stop_polling_() {
  if (poller_ == nullptr) return;
  ReadPoller* poller = poller_;
  poller_ = nullptr;
  poller->remove(socket_.socket().native_handle(), this, poll_slot_);  // may drop the set's reference: last
}

void Connection::on_read_(const boost::system::error_code& error, std::size_t n) {
  if (error == asio::error::operation_aborted || shut_) return;
  if (error) stop_polling_();  // the end, or a failed socket: nothing more to read
  if (error == asio::error::eof) {
    try {
      decoder_.finish();
    } catch (const ProtocolError& e) {
      return close(CloseReason::kProtocolError, e.what());
    }
    return close(CloseReason::kPeerClosed);
  }
  if (error) return close(CloseReason::kIoError, error.message());
  if (config_.idle_timeout.count() > 0) last_read_ = std::chrono::steady_clock::now();  // only the idle timer reads it
  bool paused;
  if (!drain_frames_(n, paused)) return stop_polling_();
  // A full receive queue takes the socket out of the read set; try_receive()
  // puts it back (read_()).
  if (paused) return stop_polling_();
  read_();
}

bool Connection::drain_frames_(std::size_t n, bool& paused) {
  paused = false;
  PacketBuffer& batch = framed_;  // kept: one read's frames allocate nothing once it has grown
  batch.clear();
  std::uint64_t native = 0;
  try {
    decoder_.commit(n);  // checks a length field as soon as it is whole
    while (std::optional<Frame> frame = decoder_.next()) {
      if (native_ != nullptr) {
        if (const NativeHandlers::Handler* handler = native_->find(frame->header.kind)) {
          (*handler)(*this, *frame);
          native_->count();
          ++native;
          continue;
        }
      }
      batch.append(frame->header, frame->payload);
    }
  } catch (const ProtocolError& e) {
    const bool too_large = e.code() == ErrorCode::kOversized || e.code() == ErrorCode::kDecompressedTooLarge;
    close(too_large ? CloseReason::kTooLarge : CloseReason::kProtocolError, e.what());
    return false;
  } catch (const std::exception& e) {
    close(CloseReason::kIoError, std::string("while framing: ") + e.what());
    return false;
  }
  NotifyList::Due due;  // on the stack: a wake allocates no list, and touches no cold one
  {
    std::lock_guard lock(mutex_);
    stats_.bytes_in += n;
    stats_.native_packets += native;
    stats_.packets_in += batch.packets();
    total_bytes_in_.fetch_add(n, std::memory_order_relaxed);
    total_packets_in_.fetch_add(batch.packets() + native, std::memory_order_relaxed);  // native ones too
    received_packets_.fetch_add(batch.packets(), std::memory_order_release);
    received_bytes_ += batch.bytes();
    // The consumers usually took the queue's last buffer over: then this
    // read's buffer becomes the queue, no copy.
    if (received_.empty()) {
      received_.swap(batch);
    } else {
      received_.append(batch);
    }
    take_due_(due);
    if (received_packets_ >= config_.max_recv_packets || received_bytes_ >= config_.max_recv_bytes) {
      paused = read_paused_ = true;
    }
  }
  // A burst's big buffers are not kept by every connection.
  batch.clear();
  batch.trim(config_.decoder.retain_buffer_bytes, kKeptPackets);
  NotifyList::run_all(due);
  return true;
}

void Connection::write_() {
  // A producer that keeps the queue full gets this many writes in a row, then
  // the other handlers on this IO thread get their turn.
  constexpr int kWritesInARow = 4;
  for (int round = 0; round < kWritesInARow; ++round) {
    if (shut_ || !take_queued_()) return;
    std::span<const std::uint8_t> wire;
    try {
      wire = encode_taken_();
    } catch (const std::exception& e) {
      return close(CloseReason::kProtocolError, std::string("cannot encode a queued frame: ") + e.what());
    }
    std::size_t n = 0;
    if (!socket_.tls()) {
      // Asio's async_write would make the same send() at once, then finish
      // through the reactor and a posted handler; done here, a write the
      // kernel takes whole costs one system call and nothing else.
      boost::system::error_code error;
      n = socket_.socket().write_some(asio::buffer(wire.data(), wire.size()), error);
      if (error == asio::error::would_block) {
        n = 0;
      } else if (error) {
        return close(CloseReason::kIoError, error.message());
      }
      if (n == wire.size()) {
        if (written_()) continue;
        return;
      }
    }
    wire = wire.subspan(n);
    asio::async_write(socket_, asio::buffer(wire.data(), wire.size()),
                      [self = shared_from_this()](const boost::system::error_code& error, std::size_t) {
                        self->on_written_(error);
                      });
    return;
  }
  post_write_();
}

bool Connection::take_queued_() {
  std::lock_guard lock(mutex_);
  if (queued_frames_ == 0) {
    write_posted_ = false;
    return false;
  }
  // taken_ is empty with its capacity kept: the queue keeps growing into it.
  taken_.swap(queued_);
  taken_compress_.swap(queued_compress_);
  taken_frames_ = queued_frames_;
  queued_frames_ = 0;
  return true;
}

std::span<const std::uint8_t> Connection::encode_taken_() {
  taken_payload_ = taken_.size() - taken_frames_ * kPrefixBytes;
  if (taken_compress_.empty()) return taken_;
  // Copy the plain runs, compress the marked frames (each one stays plain
  // when compression would not shrink it, or the codec is none by now).
  out_.clear();
  std::size_t at = 0;
  for (const std::size_t frame : taken_compress_) {
    out_.insert(out_.end(), taken_.begin() + static_cast<std::ptrdiff_t>(at),
                taken_.begin() + static_cast<std::ptrdiff_t>(frame));
    const std::uint8_t* prefix = taken_.data() + frame;
    const std::uint32_t length = load_u32le(prefix);
    encoder_.append(out_, parse_header(prefix + kLengthBytes), {prefix + kPrefixBytes, length - kHeaderBytes});
    at = frame + kLengthBytes + length;
  }
  out_.insert(out_.end(), taken_.begin() + static_cast<std::ptrdiff_t>(at), taken_.end());
  return out_;
}

bool Connection::written_() {
  const std::size_t wire_bytes = taken_compress_.empty() ? taken_.size() : out_.size();
  NotifyList::Due due;
  bool more;
  {
    std::lock_guard lock(mutex_);
    written_seq_ += taken_frames_;
    send_bytes_ -= taken_payload_;
    stats_.packets_out += taken_frames_;
    stats_.bytes_out += wire_bytes;
    total_packets_out_.fetch_add(taken_frames_, std::memory_order_relaxed);
    total_bytes_out_.fetch_add(wire_bytes, std::memory_order_relaxed);
    ++stats_.writes;
    take_due_(due);
    more = queued_frames_ != 0;
    if (!more) write_posted_ = false;
  }
  taken_.clear();
  taken_compress_.clear();
  out_.clear();
  // A burst's big buffers are not kept by an idle connection.
  const std::size_t keep = config_.decoder.retain_buffer_bytes;
  if (taken_.capacity() > keep) std::vector<std::uint8_t>().swap(taken_);
  if (out_.capacity() > keep) std::vector<std::uint8_t>().swap(out_);
  NotifyList::run_all(due);
  return more;
}

void Connection::on_written_(const boost::system::error_code& error) {
  if (error == asio::error::operation_aborted || shut_) return;
  if (error) return close(CloseReason::kIoError, error.message());
  if (written_()) write_();
}

void Connection::arm_idle_timer_() {
  if (config_.idle_timeout.count() <= 0 || shut_) return;
  idle_timer_.expires_at(last_read_ + config_.idle_timeout);
  idle_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& error) {
    if (error || self->shut_) return;
    if (std::chrono::steady_clock::now() - self->last_read_ >= self->config_.idle_timeout) {
      return self->close(CloseReason::kIdleTimeout,
                         "nothing received for " + std::to_string(self->config_.idle_timeout.count()) + " ms");
    }
    self->arm_idle_timer_();
  });
}

void Connection::shutdown_() {
  if (shut_) return;
  shut_ = true;
  auto keep = shared_from_this();  // the read set may hold the last reference
  stop_polling_();
  socket_.close();
  idle_timer_.cancel();
  if (on_close_) {
    OnClose on_close = std::move(on_close_);
    on_close_ = nullptr;
    on_close(*this);
  }
}

}  // namespace shard::netproto
