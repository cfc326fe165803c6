#!/usr/bin/env bash
# Makes a self-signed development certificate for TLS between shard nodes and
# test clients: DIR/dev.crt and DIR/dev.key (PEM, EC P-256), valid for
# localhost, 127.0.0.1 and ::1, two years. Keeps an existing pair. Never for
# production: anyone with the repository can make the same kind of key.
#
#   ops/devcert.sh [DIR]            DIR defaults to build/devcert
#   ops/devcert.sh --expired DIR    a pair that expired in 2020 (the tests' bad certificate)
set -euo pipefail

expired=0
if [[ ${1:-} == --expired ]]; then
  expired=1
  shift
fi
repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$repo/build/devcert}
mkdir -p "$dir"
cd "$dir"
if [[ -s dev.crt && -s dev.key ]]; then
  exit 0
fi

san="subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"
if ((expired == 0)); then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 730 \
    -subj /CN=localhost -addext "$san" -keyout dev.key.tmp -out dev.crt.tmp 2>/dev/null
else
  # `req -x509` takes no dates in the past; `ca` does.
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -subj /CN=localhost -addext "$san" -keyout dev.key.tmp -out "$work/req.csr" 2>/dev/null
  : >"$work/index.txt"
  printf '[ca]\ndefault_ca=dev\n[dev]\ndatabase=%s/index.txt\nnew_certs_dir=%s\nrand_serial=yes\npolicy=any\ndefault_md=sha256\ncopy_extensions=copy\n[any]\ncommonName=supplied\n' \
    "$work" "$work" >"$work/ca.cnf"
  openssl ca -config "$work/ca.cnf" -selfsign -keyfile dev.key.tmp -in "$work/req.csr" \
    -startdate 20200101000000Z -enddate 20200102000000Z -batch -notext -out dev.crt.tmp 2>/dev/null
fi
chmod 600 dev.key.tmp
mv dev.key.tmp dev.key
mv dev.crt.tmp dev.crt
echo "devcert: $dir/dev.crt ($(openssl x509 -in dev.crt -noout -enddate))"
