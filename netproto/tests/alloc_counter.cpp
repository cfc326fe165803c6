// Replaces the global operator new/delete of the test binary to count.
#include "alloc_counter.h"

#include <malloc.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<std::size_t> g_allocations{0};
std::atomic<std::size_t> g_largest{0};
std::atomic<std::size_t> g_live{0};  // usable sizes, so a delete knows what it gives back
}  // namespace

namespace shard::testing {
std::size_t allocations() noexcept { return g_allocations.load(); }
std::size_t largest_allocation() noexcept { return g_largest.load(); }
void reset_largest_allocation() noexcept { g_largest.store(0); }
std::size_t live_bytes() noexcept { return g_live.load(); }
}  // namespace shard::testing

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  std::size_t prev = g_largest.load(std::memory_order_relaxed);
  while (n > prev && !g_largest.compare_exchange_weak(prev, n)) {
  }
  if (void* p = std::malloc(n ? n : 1)) {
    g_live.fetch_add(malloc_usable_size(p), std::memory_order_relaxed);
    return p;
  }
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  if (p != nullptr) g_live.fetch_sub(malloc_usable_size(p), std::memory_order_relaxed);
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
