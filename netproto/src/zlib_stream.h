#pragma once
// RAII owners of zlib's deflate and inflate states. Each is created on first use
// and then reset per frame: deflate's state is ~256 KiB, so a connection that never
// sends a zlib frame never pays for it.

#include <zlib.h>

#include <cstdint>
#include <memory>

namespace shard::netproto {

class ZDeflate final {
 public:
  explicit ZDeflate(int level) : level_(level) {}
  ZDeflate(const ZDeflate&) = delete;
  ZDeflate& operator=(const ZDeflate&) = delete;
  ~ZDeflate();

  // A reset stream ready for one frame.
  z_stream& begin();

 private:
  int level_;
  std::unique_ptr<z_stream> stream_;
};

class ZInflate final {
 public:
  ZInflate() = default;
  ZInflate(const ZInflate&) = delete;
  ZInflate& operator=(const ZInflate&) = delete;
  ~ZInflate();

  z_stream& begin();

 private:
  std::unique_ptr<z_stream> stream_;
};

}  // namespace shard::netproto
