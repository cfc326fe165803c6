#include "shard/engine/fd_read.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "shard/engine/asio.h"
#include "shard/engine/io_pool.h"

namespace shard::engine {
namespace {

namespace asio = boost::asio;
using Descriptor = asio::posix::stream_descriptor;
using Done = TypedCompleter<PacketRead>;

// Shared by the tasklet (start, cancel) and the handlers; the descriptor is
// touched on the context's thread only.
struct PacketReader {
  PacketReader(std::shared_ptr<asio::io_context> c, int copy_fd) : context(std::move(c)), copy(copy_fd) {}
  ~PacketReader() {
    if (copy >= 0) ::close(copy);  // never handed to the descriptor
  }
  PacketReader(const PacketReader&) = delete;
  PacketReader& operator=(const PacketReader&) = delete;

  std::shared_ptr<asio::io_context> context;  // declared first: outlives the descriptor
  int copy;
  std::unique_ptr<Descriptor> descriptor;
  uint8_t header[4] = {};
  PacketRead packet;
  bool cancelled = false;
};

// The end of the read: the outcome, then the copy closed where it is registered.
void finish(const std::shared_ptr<PacketReader>& reader, const Done& done, PacketRead::End end) {
  reader->packet.end = end;
  done(std::move(reader->packet));
  reader->descriptor.reset();
}

void fail(const std::shared_ptr<PacketReader>& reader, const Done& done, const boost::system::error_code& error) {
  done(to_error_code(error));  // operation_aborted: cancelled (killed, deadline, IO stop)
  reader->descriptor.reset();
}

void read_payload(const std::shared_ptr<PacketReader>& reader, const Done& done) {
  asio::async_read(*reader->descriptor, asio::buffer(reader->packet.payload),
                   [reader, done](const boost::system::error_code& error, std::size_t) {
                     if (error == asio::error::eof) return finish(reader, done, PacketRead::End::kEofInside);
                     if (error) return fail(reader, done, error);
                     finish(reader, done, PacketRead::End::kPacket);
                   });
}

void start_read(const std::shared_ptr<PacketReader>& reader, uint32_t max_size, const Done& done) {
  if (reader->cancelled) return done(std::make_error_code(std::errc::operation_canceled));
  reader->descriptor = std::make_unique<Descriptor>(*reader->context);
  boost::system::error_code error;
  reader->descriptor->assign(reader->copy, error);
  if (error) return fail(reader, done, error);
  reader->copy = -1;
  asio::async_read(*reader->descriptor, asio::buffer(reader->header),
                   [reader, max_size, done](const boost::system::error_code& error, std::size_t got) {
                     if (error == asio::error::eof) {
                       return finish(reader, done, got == 0 ? PacketRead::End::kEof : PacketRead::End::kEofInside);
                     }
                     if (error) return fail(reader, done, error);
                     const uint8_t* h = reader->header;
                     reader->packet.size = uint32_t{h[0]} << 24 | uint32_t{h[1]} << 16 | uint32_t{h[2]} << 8 | h[3];
                     if (reader->packet.size > max_size) return finish(reader, done, PacketRead::End::kTooLarge);
                     try {
                       reader->packet.payload.resize(reader->packet.size);
                     } catch (const std::bad_alloc&) {
                       return fail(reader, done, asio::error::no_memory);
                     }
                     read_payload(reader, done);
                   });
}

}  // namespace

Outcome<PacketRead> read_packet(int fd, uint32_t max_size, int64_t deadline_ns) {
  auto context = IoPool::instance().next_context();
  if (context == nullptr) return {WaitError::kStopped, std::nullopt};
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);  // a child process must not inherit it
  if (copy < 0) return {std::error_code(errno, std::system_category()), std::nullopt};
  std::shared_ptr<PacketReader> reader;
  try {
    reader = std::make_shared<PacketReader>(std::move(context), copy);
  } catch (const std::bad_alloc&) {
    ::close(copy);
    return {std::make_error_code(std::errc::not_enough_memory), std::nullopt};
  }
  auto start = [reader, max_size](Done done) {
    asio::post(*reader->context, [reader, max_size, done] { start_read(reader, max_size, done); });
  };
  auto cancel = [reader] {
    asio::post(*reader->context, [reader] {
      reader->cancelled = true;
      if (reader->descriptor) {
        boost::system::error_code ignored;
        reader->descriptor->cancel(ignored);
      }
    });
  };
  return await_result<PacketRead>(start, cancel, deadline_ns);
}

}  // namespace shard::engine
