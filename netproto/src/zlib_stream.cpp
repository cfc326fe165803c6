#include "zlib_stream.h"

#include <new>
#include <stdexcept>

namespace shard::netproto {

ZDeflate::~ZDeflate() {
  if (stream_) deflateEnd(stream_.get());
}

z_stream& ZDeflate::begin() {
  if (!stream_) {
    auto s = std::make_unique<z_stream>();
    if (deflateInit(s.get(), level_) != Z_OK) throw std::bad_alloc();
    stream_ = std::move(s);
  } else if (deflateReset(stream_.get()) != Z_OK) {
    throw std::logic_error("deflateReset failed");
  }
  return *stream_;
}

ZInflate::~ZInflate() {
  if (stream_) inflateEnd(stream_.get());
}

z_stream& ZInflate::begin() {
  if (!stream_) {
    auto s = std::make_unique<z_stream>();
    if (inflateInit(s.get()) != Z_OK) throw std::bad_alloc();
    stream_ = std::move(s);
  } else if (inflateReset(stream_.get()) != Z_OK) {
    throw std::logic_error("inflateReset failed");
  }
  return *stream_;
}

}  // namespace shard::netproto
