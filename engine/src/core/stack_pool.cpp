#include "shard/engine/stack_pool.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>

#ifdef SHARD_SANITIZE_ADDRESS
#include <sanitizer/lsan_interface.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define SHARD_REGISTER_STACK(low, high) VALGRIND_STACK_REGISTER(low, high)
#else
#define SHARD_REGISTER_STACK(low, high) 0
#endif

namespace shard::engine {
namespace {

// The main thread's 8 MiB plus the reserve kept below the deepest level (see
// the recursion cap in scheduler.cpp): whatever recursion stock CPython survives
// on its main thread at the default limit fits in a tasklet too. Only touched
// pages cost memory; the address space is plentiful (1M tasklets ~ 8.3 TiB).
constexpr std::size_t kDefaultStackBytes = 8320u << 10;
// Large enough that deep pure-Python recursion stays in the root chunk: a call
// that does not fit makes CPython map and unmap an overflow chunk on every call.
constexpr std::size_t kDefaultChunkBytes = 256u << 10;

std::size_t page_size() {
  static const std::size_t size = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

std::size_t stack_bytes_from_env() {
  const char* kb = std::getenv("SHARD_TASKLET_STACK_KB");
  if (kb == nullptr || *kb == '\0') return kDefaultStackBytes;
  char* end = nullptr;
  unsigned long value = std::strtoul(kb, &end, 10);
  if (*end != '\0' || value < 256 || value > (1u << 20)) {
    throw std::invalid_argument(std::string("SHARD_TASKLET_STACK_KB must be 256..1048576, got '") +
                                kb + "'");
  }
  return value << 10;
}

// Lines of a /proc file (counted without stdio, which may allocate), or
// `fallback` when it cannot be read.
std::size_t count_lines(const char* path, std::size_t fallback) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fallback;
  std::size_t lines = 0;
  char buffer[8192];
  for (ssize_t n; (n = read(fd, buffer, sizeof buffer)) > 0;) lines += std::count(buffer, buffer + n, '\n');
  close(fd);
  return lines;
}

[[maybe_unused]] std::size_t max_map_count() {
  constexpr std::size_t kLinuxDefault = 65530;
  int fd = open("/proc/sys/vm/max_map_count", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return kLinuxDefault;
  char text[32] = {};
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  unsigned long value = n > 0 ? std::strtoul(text, nullptr, 10) : 0;
  return value > 0 ? value : kLinuxDefault;
}

}  // namespace

StackPool::GuardPages StackPool::GuardPages::from_build() {
#ifdef SHARD_STACK_GUARD_PAGES
  return {true, max_map_count()};
#else
  return {false, 0};
#endif
}

StackPool::StackPool(Sizes sizes, std::size_t blocks_per_slab, GuardPages guard)
    : sizes_(sizes),
      blocks_per_slab_(blocks_per_slab),
      guard_(guard),
      stride_(sizes.stack_bytes + sizes.chunk_bytes + (guard.enabled ? page_size() : 0)) {
  if (sizes.stack_bytes % page_size() != 0 || sizes.chunk_bytes % page_size() != 0) {
    throw std::invalid_argument("StackPool sizes must be multiples of the page size");
  }
}

StackPool::~StackPool() {
  for (void* slab : slabs_) munmap(slab, stride_ * blocks_per_slab_);
}

StackPool& StackPool::instance() {
  // Never destroyed: fibers of other threads may still return blocks at exit.
  static StackPool* pool = new StackPool({stack_bytes_from_env(), kDefaultChunkBytes});
  return *pool;
}

void StackPool::add_slab_locked() {
  const std::size_t bytes = stride_ * blocks_per_slab_;
  void* slab = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (slab == MAP_FAILED) {
    throw std::system_error(errno, std::generic_category(),
                            "mapping a slab of " + std::to_string(blocks_per_slab_) +
                                " tasklet stacks (" + std::to_string(bytes >> 20) + " MiB)");
  }
  // Transparent huge pages would turn each touched stack top into 2 MiB of
  // resident memory where "always" is the system default.
  madvise(slab, bytes, MADV_NOHUGEPAGE);
  slabs_.push_back(slab);
  auto* base = static_cast<char*>(slab);
  const std::size_t guard_bytes = stride_ - block_bytes();
  if (guard_.enabled && guard_slab_locked(base)) guarded_blocks_ += blocks_per_slab_;
  // Hand out low addresses first so neighbouring tasklets share page-table pages.
  for (std::size_t i = blocks_per_slab_; i-- > 0;) {
    char* block = base + i * stride_ + guard_bytes;
    // Under valgrind, switching to a fiber stack is then not mistaken for a
    // wild stack-pointer jump; elsewhere this costs a few instructions.
    (void)SHARD_REGISTER_STACK(block, block + block_bytes());
    free_.push_back(block);
  }
}

// A guard page splits the slab's one mapping in two per stack: the guard and
// the block above it. Past vm.max_map_count every mmap and mprotect in the
// process fails (malloc, Python's arenas, thread stacks), so slabs beyond the
// bound go unguarded instead, with the canary as the only check.
bool StackPool::guard_slab_locked(char* slab) {
  const std::size_t in_use = count_lines("/proc/self/maps", guard_.map_limit);
  const std::size_t needed = 2 * blocks_per_slab_;
  const char* failed = nullptr;
  if (in_use + needed + kMapHeadroom > guard_.map_limit) {
    failed = "it would exceed vm.max_map_count";
  } else {
    for (std::size_t i = 0; i < blocks_per_slab_ && failed == nullptr; ++i) {
      if (mprotect(slab + i * stride_, page_size(), PROT_NONE) != 0) failed = std::strerror(errno);
    }
  }
  if (failed == nullptr) return true;
  // Restores the slab to one mapping; the blocks already guarded lose theirs.
  mprotect(slab, stride_ * blocks_per_slab_, PROT_READ | PROT_WRITE);
  if (!guard_fallback_logged_) {
    guard_fallback_logged_ = true;
    std::fprintf(stderr,
                 "shard: stack guard pages: no guard pages for this slab of %zu tasklet stacks or later "
                 "ones: %s (%zu mappings in use, %zu more needed, %zu kept for the rest of the process, "
                 "vm.max_map_count=%zu); %zu stacks have guard pages, the others only the stack canary. "
                 "Raise vm.max_map_count to guard more (docs/engine.md).\n",
                 blocks_per_slab_, failed, in_use, needed, kMapHeadroom, guard_.map_limit, guarded_blocks_);
  }
  return false;
}

StackPool::Layout StackPool::layout(void* block) const {
  const std::size_t split = page_size() / 2;
  return {static_cast<char*>(block) + sizes_.stack_bytes - split, sizes_.stack_bytes - split,
          sizes_.chunk_bytes + split};
}

void* StackPool::acquire() {
  std::lock_guard lock(mutex_);
  if (free_.empty()) add_slab_locked();
  void* block = free_.back();
  free_.pop_back();
  ++in_use_;
  return block;
}

void StackPool::release(void* block) {
  std::lock_guard lock(mutex_);
  free_.push_back(block);
  --in_use_;
}

void StackPool::abandon(void* block) {
#ifdef SHARD_SANITIZE_ADDRESS
  __lsan_register_root_region(block, block_bytes());
#else
  (void)block;
#endif
}

void StackPool::trim() {
  std::lock_guard lock(mutex_);
  for (void* block : free_) madvise(block, block_bytes(), MADV_DONTNEED);
}

std::size_t StackPool::blocks_in_use() const {
  std::lock_guard lock(mutex_);
  return in_use_;
}

std::size_t StackPool::slabs() const {
  std::lock_guard lock(mutex_);
  return slabs_.size();
}

std::size_t StackPool::guarded_blocks() const {
  std::lock_guard lock(mutex_);
  return guarded_blocks_;
}

}  // namespace shard::engine
