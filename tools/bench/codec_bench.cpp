// Frame codec throughput, one thread: encode + decode of batches of frames,
// plain / snappy / zlib, 64 B and 16 KiB payloads. Prints one JSON line per case,
// then a table. The "peer" is the bare library on the same payloads (memcpy for
// plain, snappy's or zlib's own calls), so the framing's own cost shows.
//
//   build/bin/codec_bench [--seconds 0.5] [--repeat 3]
#include <snappy.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "shard/netproto/frame_decoder.h"
#include "shard/netproto/frame_encoder.h"
#include "shard/netproto/message_codec.h"

namespace net = shard::netproto;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kBatch = 64;  // frames per output buffer: one batched write

// Chat/market-like text: random words of a small vocabulary and numbers.
std::vector<std::uint8_t> payload_of(std::size_t n) {
  static const char* words[] = {"ship",  "jita",   "buy",  "sell", "order", "tritanium", "fleet", "warp",
                                "dock",  "market", "isk",  "ore",  "pilot", "station",   "gate",  "local"};
  std::mt19937 rng(7);
  std::string s;
  while (s.size() < n) {
    s += words[rng() % 16];
    s += ' ';
    if (rng() % 4 == 0) s += std::to_string(rng() % 100000) + ' ';
  }
  return {s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n)};
}

struct Result {
  double frames_per_s = 0;
  double wire_bytes_per_frame = 0;
};

// Best of `repeat` runs of `seconds` each; `round` does kBatch frames.
template <class Round>
double best_rate(double seconds, int repeat, Round&& round) {
  double best = 0;
  for (int r = 0; r < repeat; ++r) {
    std::size_t frames = 0;
    const auto start = Clock::now();
    const auto until = start + std::chrono::duration<double>(seconds);
    auto now = start;
    while (now < until) {
      for (int i = 0; i < 16; ++i) frames += round();
      now = Clock::now();
    }
    best = std::max(best, static_cast<double>(frames) / std::chrono::duration<double>(now - start).count());
  }
  return best;
}

Result ours(net::Codec codec, std::uint32_t threshold, const std::vector<std::uint8_t>& payload, double seconds,
            int repeat) {
  net::EncoderConfig ec;
  ec.codec = codec;
  ec.compress_threshold = threshold;
  net::FrameEncoder encoder(ec);
  net::DecoderConfig dc;
  dc.allowed_codecs = 7;
  net::FrameDecoder decoder(dc);
  std::vector<std::uint8_t> out;
  net::FrameHeader h;
  h.kind = net::MessageKind::kMovement;
  h.dest_kind = net::DestKind::kEntity;
  std::size_t checksum = 0;
  Result r;
  r.frames_per_s = best_rate(seconds, repeat, [&] {
    out.clear();
    for (int i = 0; i < kBatch; ++i) {
      h.target_id = static_cast<std::uint64_t>(i);
      encoder.append(out, h, payload);
    }
    decoder.feed(out);
    std::size_t n = 0;
    while (auto f = decoder.next()) {
      checksum += f->payload.size() + f->header.target_id;
      ++n;
    }
    return n;
  });
  r.wire_bytes_per_frame = static_cast<double>(out.size()) / kBatch;
  if (checksum == 0) std::puts("");  // keeps the loop from being optimised away
  return r;
}

// The whole path of a movement update: protobuf serialise into the batch, frame,
// decode, parse back (70-byte payload). The peer row is protobuf alone.
Result ours_movement(double seconds, int repeat) {
  net::FrameEncoder encoder;
  net::FrameDecoder decoder;
  std::vector<std::uint8_t> out;
  shard::wire::Movement m, back;
  m.set_x(1e12), m.set_y(2e11), m.set_z(-5e10), m.set_vx(1), m.set_vy(2), m.set_vz(3), m.set_heading(0.5f);
  m.set_timestamp_us(1'700'000'000'000'000ull);
  net::FrameHeader h;
  h.native = true;
  h.dest_kind = net::DestKind::kEntity;
  std::uint64_t checksum = 0;
  Result r;
  r.frames_per_s = best_rate(seconds, repeat, [&] {
    out.clear();
    for (int i = 0; i < kBatch; ++i) {
      m.set_entity_id(static_cast<std::uint64_t>(i));
      m.set_sequence(static_cast<std::uint32_t>(i));
      h.target_id = static_cast<std::uint64_t>(i);
      net::append_message(encoder, out, h, m);
    }
    decoder.feed(out);
    std::size_t n = 0;
    while (auto f = decoder.next()) {
      net::parse_message(*f, back);
      checksum += back.sequence();
      ++n;
    }
    return n;
  });
  r.wire_bytes_per_frame = static_cast<double>(out.size()) / kBatch;
  if (checksum == 1) std::puts("");
  return r;
}

double peer_movement(double seconds, int repeat) {
  shard::wire::Movement m, back;
  m.set_x(1e12), m.set_y(2e11), m.set_z(-5e10), m.set_vx(1), m.set_vy(2), m.set_vz(3), m.set_heading(0.5f);
  m.set_timestamp_us(1'700'000'000'000'000ull);
  std::string buffer;
  std::uint64_t checksum = 0;
  const double rate = best_rate(seconds, repeat, [&] {
    for (int i = 0; i < kBatch; ++i) {
      m.set_sequence(static_cast<std::uint32_t>(i));
      m.SerializeToString(&buffer);
      back.ParseFromString(buffer);
      checksum += back.sequence();
    }
    return kBatch;
  });
  if (checksum == 1) std::puts("");
  return rate;
}

// The same bytes through the bare library: compress into a buffer, then back.
double peer(net::Codec codec, const std::vector<std::uint8_t>& payload, double seconds, int repeat) {
  std::vector<std::uint8_t> packed(std::max<std::size_t>(snappy::MaxCompressedLength(payload.size()),
                                                         compressBound(static_cast<uLong>(payload.size()))));
  std::vector<std::uint8_t> back(payload.size());
  z_stream dz{}, iz{};
  deflateInit(&dz, 1);
  inflateInit(&iz);
  std::size_t checksum = 0;
  const double rate = best_rate(seconds, repeat, [&] {
    for (int i = 0; i < kBatch; ++i) {
      if (codec == net::Codec::kNone) {
        std::memcpy(packed.data(), payload.data(), payload.size());
        std::memcpy(back.data(), packed.data(), payload.size());
      } else if (codec == net::Codec::kSnappy) {
        std::size_t n = 0;
        snappy::RawCompress(reinterpret_cast<const char*>(payload.data()), payload.size(),
                            reinterpret_cast<char*>(packed.data()), &n);
        snappy::RawUncompress(reinterpret_cast<const char*>(packed.data()), n,
                              reinterpret_cast<char*>(back.data()));
      } else {
        deflateReset(&dz);
        dz.next_in = const_cast<Bytef*>(payload.data());
        dz.avail_in = static_cast<uInt>(payload.size());
        dz.next_out = packed.data();
        dz.avail_out = static_cast<uInt>(packed.size());
        deflate(&dz, Z_FINISH);
        inflateReset(&iz);
        iz.next_in = packed.data();
        iz.avail_in = static_cast<uInt>(dz.total_out);
        iz.next_out = back.data();
        iz.avail_out = static_cast<uInt>(back.size());
        inflate(&iz, Z_FINISH);
      }
      checksum += back[payload.size() / 2];
    }
    return kBatch;
  });
  deflateEnd(&dz);
  inflateEnd(&iz);
  if (checksum == 0) std::puts("");
  return rate;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 0.5;
  int repeat = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--seconds") == 0) seconds = std::stod(argv[i + 1]);
    if (std::strcmp(argv[i], "--repeat") == 0) repeat = std::stoi(argv[i + 1]);
  }
  const char* names[] = {"plain", "snappy", "zlib"};
  const char* peers[] = {"memcpy", "snappy raw", "zlib raw (level 1)"};
  // The default threshold (512) sends 64 B payloads plain; threshold 0 forces
  // compression to show what it would cost.
  struct Case {
    std::size_t size;
    net::Codec codec;
    std::uint32_t threshold;
  };
  const Case cases[] = {
      {64, net::Codec::kNone, 512},      {64, net::Codec::kSnappy, 512},    {64, net::Codec::kZlib, 512},
      {64, net::Codec::kSnappy, 0},      {64, net::Codec::kZlib, 0},        {16384, net::Codec::kNone, 512},
      {16384, net::Codec::kSnappy, 512}, {16384, net::Codec::kZlib, 512},
  };
  std::vector<std::string> table;
  for (const Case& k : cases) {
    const auto payload = payload_of(k.size);
    const int c = static_cast<int>(k.codec);
    const Result r = ours(k.codec, k.threshold, payload, seconds, repeat);
    const double p = peer(k.codec, payload, seconds, repeat);
    const double mb = r.frames_per_s * static_cast<double>(k.size) / 1e6;
    const bool compressed = r.wire_bytes_per_frame < static_cast<double>(k.size + net::kPrefixBytes);
    std::printf(
        "{\"bench\": \"codec\", \"codec\": \"%s\", \"payload_bytes\": %zu, \"threshold\": %u, "
        "\"compressed\": %s, \"wire_bytes_per_frame\": %.1f, \"frames_per_s\": %.0f, "
        "\"payload_mb_per_s\": %.1f, \"peer\": \"%s\", \"peer_frames_per_s\": %.0f, \"ours_per_peer\": %.2f}\n",
        names[c], k.size, k.threshold, compressed ? "true" : "false", r.wire_bytes_per_frame, r.frames_per_s,
        mb, peers[c], p, r.frames_per_s / p);
    char line[256];
    std::snprintf(line, sizeof line, "| %s | %zu | %u | %.1f | %.0f | %.1f | %s | %.0f |", names[c], k.size,
                  k.threshold, r.wire_bytes_per_frame, r.frames_per_s, mb, peers[c], p);
    table.emplace_back(line);
  }
  {
    const Result r = ours_movement(seconds, repeat);
    const double p = peer_movement(seconds, repeat);
    std::printf(
        "{\"bench\": \"codec\", \"codec\": \"plain\", \"payload\": \"Movement protobuf\", "
        "\"payload_bytes\": 70, \"wire_bytes_per_frame\": %.1f, \"frames_per_s\": %.0f, "
        "\"peer\": \"protobuf serialise+parse\", \"peer_frames_per_s\": %.0f, \"ours_per_peer\": %.2f}\n",
        r.wire_bytes_per_frame, r.frames_per_s, p, r.frames_per_s / p);
    char line[256];
    std::snprintf(line, sizeof line, "| plain, Movement message | 70 | 512 | %.1f | %.0f | %.1f | protobuf serialise+parse | %.0f |",
                  r.wire_bytes_per_frame, r.frames_per_s, r.frames_per_s * 70 / 1e6, p);
    table.emplace_back(line);
  }
  std::puts("\n| codec | payload B | threshold | wire B/frame | frames/s (enc+dec) | payload MB/s | peer | peer frames/s |");
  std::puts("|---|---:|---:|---:|---:|---:|---|---:|");
  for (const auto& line : table) std::puts(line.c_str());
  return 0;
}
