// libFuzzer target for the frame decoder (ops/fuzz.sh builds and runs it).
//
// Input: byte 0 picks the configuration (allowed codecs, limits, mode), byte 1
// the feed chunk size; the rest is the byte stream. Properties checked besides
// "no crash, no sanitizer report, no allocation over -malloc_limit_mb":
// - every frame respects the limits;
// - a decoded frame re-encodes (plain) and decodes to the same header and payload;
// - mode bit 7: the rest is a payload; encoding it with each codec and decoding
//   gives it back.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "shard/netproto/frame_decoder.h"
#include "shard/netproto/frame_encoder.h"
#include "shard/netproto/protocol_error.h"

namespace net = shard::netproto;

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void round_trip_payload(const std::uint8_t* data, std::size_t size) {
  for (net::Codec codec : {net::Codec::kNone, net::Codec::kSnappy, net::Codec::kZlib}) {
    net::EncoderConfig ec;
    ec.codec = codec;
    ec.compress_threshold = 0;
    net::FrameEncoder encoder(ec);
    std::vector<std::uint8_t> out;
    net::FrameHeader h;
    h.target_id = size;
    encoder.append(out, h, {data, size});
    net::DecoderConfig dc;
    dc.allowed_codecs = 7;
    net::FrameDecoder decoder(dc);
    decoder.feed(out);
    auto f = decoder.next();
    check(f.has_value() && f->header.target_id == size && f->payload.size() == size &&
          (size == 0 || std::memcmp(f->payload.data(), data, size) == 0));
    check(!decoder.next().has_value());
  }
}

void check_frame(const net::Frame& f, const net::Limits& limits) {
  // A plain payload is bounded by the frame limit, a decompressed one by its own.
  if (f.header.codec == net::Codec::kNone) {
    check(f.payload.size() + net::kHeaderBytes <= limits.max_frame_bytes);
  } else {
    check(f.payload.size() <= limits.max_decompressed_bytes);
  }
  net::EncoderConfig ec;
  ec.limits = limits;
  net::FrameEncoder encoder(ec);
  std::vector<std::uint8_t> out;
  try {
    encoder.append(out, f.header, f.payload);
  } catch (const net::ProtocolError&) {
    return;  // a decompressed payload may not fit plain under max_frame_bytes
  }
  net::FrameDecoder again({.limits = limits});
  again.feed(out);
  auto g = again.next();
  net::FrameHeader plain = f.header;
  plain.codec = net::Codec::kNone;
  check(g.has_value() && g->header == plain && g->payload.size() == f.payload.size() &&
        (f.payload.empty() || std::memcmp(g->payload.data(), f.payload.data(), f.payload.size()) == 0));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t mode = data[0];
  const std::size_t chunk = 1 + data[1] % 64;
  data += 2;
  size -= 2;
  if (mode & 0x80) {
    round_trip_payload(data, size);
    return 0;
  }
  net::DecoderConfig config;
  config.allowed_codecs = static_cast<std::uint8_t>(1 | ((mode & 3) << 1));
  // Small limits, so the fuzzer reaches them: 64 B .. 1 MiB.
  config.limits.max_frame_bytes = 64u << (((mode >> 2) & 3) * 4);
  config.limits.max_decompressed_bytes = 64u << (((mode >> 4) & 3) * 4);
  config.retain_buffer_bytes = 256;
  net::FrameDecoder decoder(config);
  try {
    for (std::size_t at = 0; at < size; at += chunk) {
      decoder.feed({data + at, std::min(chunk, size - at)});
      while (auto f = decoder.next()) check_frame(*f, config.limits);
    }
    decoder.finish();
  } catch (const net::ProtocolError& e) {
    check(decoder.failed() || e.code() == net::ErrorCode::kTruncated);
  }
  return 0;
}
