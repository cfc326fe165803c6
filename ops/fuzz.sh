#!/usr/bin/env bash
# Builds the frame decoder's libFuzzer target with clang (ASan + UBSan) into
# build-fuzz/ and runs it for a bounded time: ops/fuzz.sh [SECONDS] (default 60).
# Reads the seed corpus in netproto/fuzz/corpus/; new inputs go to
# build-fuzz/corpus/ (copy an interesting one into the seed corpus by hand).
# Crashes are written as build-fuzz/crash-*; the exit status is non-zero then.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=build-fuzz
mkdir -p "$out/corpus"
src=netproto/src
clang++ -std=c++20 -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -Inetproto/include -I"$src" \
  netproto/fuzz/frame_decoder_fuzz.cpp \
  "$src/compressor.cpp" "$src/frame_decoder.cpp" "$src/frame_encoder.cpp" \
  "$src/frame_header.cpp" "$src/protocol_error.cpp" "$src/zlib_stream.cpp" \
  -lsnappy -lz -o "$out/frame_decoder_fuzz"
# -malloc_limit_mb: a single allocation over 64 MiB is a finding (the decoder's
# limits in the target are at most 1 MiB, so only a missed check gets there).
"$out/frame_decoder_fuzz" -max_total_time="$seconds" -max_len=70000 -rss_limit_mb=2048 \
  -malloc_limit_mb=64 -print_final_stats=1 -artifact_prefix="$out/" \
  "$out/corpus" netproto/fuzz/corpus
