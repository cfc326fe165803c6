#include "compressor.h"

#include <snappy.h>

#include <string>

#include "shard/netproto/protocol_error.h"

namespace shard::netproto {
namespace {

constexpr std::size_t kZlibSizeBytes = 4;

[[noreturn]] void fail(ErrorCode code, const std::string& what) { throw ProtocolError(code, what); }

}  // namespace

std::size_t Compressor::compress(Codec codec, std::span<const std::uint8_t> in,
                                 std::vector<std::uint8_t>& out) {
  const std::size_t start = out.size();
  if (codec == Codec::kSnappy) {
    out.resize(start + snappy::MaxCompressedLength(in.size()));
    std::size_t n = 0;
    snappy::RawCompress(reinterpret_cast<const char*>(in.data()), in.size(),
                        reinterpret_cast<char*>(out.data() + start), &n);
    out.resize(start + n);
    return n;
  }
  if (codec == Codec::kZlib) {
    z_stream& z = deflate_.begin();
    const uLong bound = deflateBound(&z, static_cast<uLong>(in.size()));
    out.resize(start + kZlibSizeBytes + bound);
    store_u32le(out.data() + start, static_cast<std::uint32_t>(in.size()));
    z.next_in = const_cast<Bytef*>(in.data());  // zlib's API is not const-correct
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = out.data() + start + kZlibSizeBytes;
    z.avail_out = static_cast<uInt>(bound);
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
      out.resize(start);
      throw std::logic_error("deflate did not finish within deflateBound");
    }
    const std::size_t n = kZlibSizeBytes + z.total_out;
    out.resize(start + n);
    return n;
  }
  throw std::invalid_argument("Compressor::compress: no codec");
}

std::uint8_t* Decompressor::reserve(std::size_t n) {
  // Never shrinks: the buffer is reused for every frame of the connection. One
  // byte extra so data() is never null, even for an empty payload.
  if (out_.size() < n + 1) out_.resize(n + 1);
  return out_.data();
}

std::span<const std::uint8_t> Decompressor::decompress(Codec codec, std::span<const std::uint8_t> in) {
  const auto* src = reinterpret_cast<const char*>(in.data());
  if (codec == Codec::kSnappy) {
    std::size_t n = 0;
    if (!snappy::GetUncompressedLength(src, in.size(), &n)) {
      fail(ErrorCode::kDecompressFailed, "snappy payload has no valid length preamble");
    }
    if (n > max_out_) {
      fail(ErrorCode::kDecompressedTooLarge, "snappy payload declares " + std::to_string(n) +
                                                 " bytes, limit " + std::to_string(max_out_));
    }
    std::uint8_t* dst = reserve(n);
    if (!snappy::RawUncompress(src, in.size(), reinterpret_cast<char*>(dst))) {
      fail(ErrorCode::kDecompressFailed, "corrupt snappy payload");
    }
    return {dst, n};
  }
  if (codec == Codec::kZlib) {
    if (in.size() < kZlibSizeBytes) fail(ErrorCode::kDecompressFailed, "zlib payload shorter than its size field");
    const std::uint32_t n = load_u32le(in.data());
    if (n > max_out_) {
      fail(ErrorCode::kDecompressedTooLarge, "zlib payload declares " + std::to_string(n) +
                                                 " bytes, limit " + std::to_string(max_out_));
    }
    std::uint8_t* dst = reserve(n);
    z_stream& z = inflate_.begin();
    z.next_in = const_cast<Bytef*>(in.data() + kZlibSizeBytes);
    z.avail_in = static_cast<uInt>(in.size() - kZlibSizeBytes);
    z.next_out = dst;
    z.avail_out = n;  // exactly the declared size: a bomb stops here
    const int rc = inflate(&z, Z_FINISH);
    if (rc == Z_STREAM_END) {
      if (z.avail_in != 0) fail(ErrorCode::kDecompressFailed, "bytes after the end of the zlib stream");
      if (z.avail_out != 0) {
        fail(ErrorCode::kDecompressFailed, "zlib stream ended after " + std::to_string(z.total_out) +
                                               " bytes, declared " + std::to_string(n));
      }
      return {dst, n};
    }
    if (rc == Z_BUF_ERROR && z.avail_out == 0 && z.avail_in != 0) {
      fail(ErrorCode::kDecompressedTooLarge,
           "zlib stream inflates past its declared " + std::to_string(n) + " bytes");
    }
    fail(ErrorCode::kDecompressFailed, "corrupt zlib payload (inflate " + std::to_string(rc) + ")");
  }
  fail(ErrorCode::kBadFlags, "decompress called for an uncompressed frame");
}

}  // namespace shard::netproto
