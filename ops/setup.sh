#!/usr/bin/env bash
# Installs what the shard needs on Debian 12, only what is missing; safe to run again.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost-dev libboost-context-dev   # 1.74: 1.81 conflicts with libmysqlcppconn-dev
  python3.11 python3.11-dev           # the CPython we embed (not a python3 earlier on PATH)
  libgtest-dev googletest
  python3-greenlet python3-gevent python3-uvloop   # peers the benchmarks measure beside us
  protobuf-compiler libprotobuf-dev python3-protobuf   # netproto: wire schemas, C++ and Python
  libsnappy-dev zlib1g-dev            # netproto: per-frame compression
  libssl-dev                          # netproto: TLS (OpenSSL on the IO threads)
  clang libfuzzer-14-dev              # ops/fuzz.sh: the frame decoder's fuzzer
  mariadb-server libmysqlcppconn-dev  # db/: the private test server (ops/mariadb.sh), Connector/C++
  python3-mysqldb python3-aiomysql    # peers tools/bench/db_bench.py measures beside the pool
  openssl                             # the openssl CLI: certificates (tasklet-socket TLS tests, ops/devcert.sh, ops/mariadb.sh), net_bench.sh's ceiling
  libboost-program-options-dev        # server/: prefs.ini and the command line of shard proxy|sol
  python3-matplotlib                  # tools/client/swarm.py: the latency plot (PNG)
  python3-prometheus-client           # server/console: its /metrics test reads them with the reference parser
  chromium chromium-driver python3-selenium   # server/console: the browser test of the console page
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
install_missing() {
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update
  $sudo apt-get install -y --no-install-recommends "${missing[@]}"
}

if ((${#missing[@]} == 0)); then
  echo "setup: all packages present"
else
  install_missing
fi
# The self-signed development certificate for TLS, into build/devcert (the
# build makes one too, for build trees made later: netproto/CMakeLists.txt).
"$(dirname "$0")/devcert.sh"
