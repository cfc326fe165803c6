#!/usr/bin/env bash
# Benchmark 8(a): frames/s and MB/s per IO thread over loopback — plain,
# snappy, zlib, TLS; 64 B and 16 KiB payloads; each direction — beside the
# ceiling for TLS measured in the same run: `openssl speed -evp aes-128-gcm`
# (the cipher the server prefers) on 16 KiB blocks. JSON lines, then a table.
#
#   tools/bench/net_bench.sh [BUILD_DIR] [SECONDS] [REPEAT]      (defaults: build, 1, 3)
#
# Each figure is the best of REPEAT runs, the ceiling too: on a shared machine
# other work only ever slows a run down.
set -euo pipefail
build=${1:-build}
seconds=${2:-1}
repeat=${3:-3}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

"$build/bin/net_bench" --seconds "$seconds" --repeat "$repeat" --certs "$build/devcert" | tee "$out"
# One thread, 16 KiB blocks: the most one core encrypts; its last line is
# "aes-128-gcm  <16 B> ... <16384 B>" in kB/s (1000 bytes).
speed=0
for _ in $(seq "$repeat"); do
  s=$(openssl speed -evp aes-128-gcm -bytes 16384 -seconds "$seconds" 2>/dev/null | awk '/^AES-128-GCM|^aes-128-gcm/ {v=$NF} END {sub("k", "", v); print v}')
  speed=$(awk -v a="$speed" -v b="$s" 'BEGIN {print (b > a) ? b : a}')
done
echo "{\"bench\": \"openssl_speed\", \"cipher\": \"aes-128-gcm\", \"block\": 16384, \"mb_per_s\": $(awk -v k="$speed" 'BEGIN {printf "%.1f", k / 1000}')}" | tee -a "$out"

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
ceiling = next(r["mb_per_s"] for r in rows if r["bench"] == "openssl_speed")
print()
print("| case | payload | direction | frames/s | MB/s | IO thread busy | frames/s per busy thread | MB/s per busy thread | vs openssl speed (busy / wall) |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
for r in rows:
    if r["bench"] != "net_io_thread":
        continue
    vs = "%.0f %% / %.0f %%" % (100 * r["mb_per_cpu_s"] / ceiling, 100 * r["mb_per_s"] / ceiling) if r["case"] == "tls" else ""
    print("| %s | %d B | %s | %s | %.1f | %.0f %% | %s | %.1f | %s |" % (
        r["case"] + (" (" + r["tls"] + ")" if r["tls"] else ""), r["payload"], r["direction"],
        format(round(r["frames_per_s"]), ","), r["mb_per_s"], 100 * r["thread_cpu"],
        format(round(r["frames_per_cpu_s"]), ","), r["mb_per_cpu_s"], vs))
print("| openssl speed -evp aes-128-gcm (one thread) | 16384 B | encrypt | | %.1f | 100 %% | | %.1f | 100 %% |" % (ceiling, ceiling))
PY
