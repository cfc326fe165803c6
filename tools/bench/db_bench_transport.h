// The transport every client of the database benchmark uses, from
// SHARD_BENCH_DB_TRANSPORT (tools/bench/db_bench.py reads the same): "tcp"
// (the default: a database on its own host, the production case) or "socket"
// (the unix socket: the database on the node's own host).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>

// "tcp" or "socket"; "" after printing why the variable's value is refused.
inline std::string bench_transport() {
  const char* value = std::getenv("SHARD_BENCH_DB_TRANSPORT");
  const std::string transport = value == nullptr || *value == '\0' ? "tcp" : value;
  if (transport == "tcp" || transport == "socket") return transport;
  std::fprintf(stderr, "SHARD_BENCH_DB_TRANSPORT=%s: tcp or socket\n", transport.c_str());
  return "";
}
