#pragma once
// Pooled memory blocks for tasklet fibers. A block holds a tasklet's C stack and,
// right above the stack top, the root chunk of CPython's per-frame data stack:
//
//   low address                                              high address
//   [ ............ C stack, grows down <- | root data-stack chunk, grows up -> ]
//                                         ^ stack top, mid-page
//
// Both hot ends meet in one page: the stack top sits half a page into it, and a
// tasklet blocked a few calls deep (~1.5 KiB of C stack, a few hundred bytes of
// Python frames) touches that page only.
// Blocks are carved from large slabs with no guard pages: a guard page per stack
// costs two memory mappings and caps a process near 32,500 tasklets under the
// default vm.max_map_count. Overflow is prevented instead by bounding recursion
// per tasklet (the recursion cap in tasklet_fiber.cpp), and detected by a canary
// word at each stack's low end, checked whenever a tasklet switches out
// (stack_canary_intact()). Builds with SHARD_STACK_GUARD_PAGES put a PROT_NONE
// page below each stack while vm.max_map_count allows (docs/engine.md).
//
// Slabs are mapped MAP_NORESERVE: a block's pages cost memory only once touched.
// The pool is shared by all threads; a finished tasklet's block goes back to it
// from whichever thread it ran on.

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace shard::engine {

class StackPool final {
 public:
  struct Sizes {
    std::size_t stack_bytes;
    std::size_t chunk_bytes;
  };

  // Guard pages below the stacks, while the process stays `map_headroom`
  // mappings below vm.max_map_count (`map_limit`).
  struct GuardPages {
    bool enabled;
    std::size_t map_limit;
    // What the build asks for (SHARD_STACK_GUARD_PAGES) and what the system allows.
    static GuardPages from_build();
  };
  // Mappings left for the rest of the process (malloc arenas, Python's arenas,
  // thread stacks, libraries) when deciding whether a slab can have guard pages.
  static constexpr std::size_t kMapHeadroom = 4096;

  explicit StackPool(Sizes sizes, std::size_t blocks_per_slab = 256,
                     GuardPages guard = GuardPages::from_build());
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // The process-wide pool used by tasklets; sizes come from the environment
  // (SHARD_TASKLET_STACK_KB) or defaults.
  static StackPool& instance();

  // Returns the base (lowest address) of a block of block_bytes(), its stack's
  // low end, where the canary word is. Throws
  // std::system_error when the address space is exhausted.
  void* acquire();
  void release(void* block);
  // A block whose tasklet's C stack can never be unwound (it outlived its
  // thread): it stays out of the pool for good. Under LeakSanitizer it becomes
  // a root region, so what the abandoned frames still reference is not reported.
  void abandon(void* block);

  // Gives the pages of free blocks back to the OS (they stay reserved).
  void trim();

  // Where a block's stack top is, and the sizes either side of it.
  struct Layout {
    char* stack_top;
    std::size_t stack_size;  // below stack_top
    std::size_t chunk_size;  // from stack_top up
  };
  Layout layout(void* block) const;

  std::size_t stack_bytes() const { return sizes_.stack_bytes; }
  std::size_t chunk_bytes() const { return sizes_.chunk_bytes; }
  std::size_t block_bytes() const { return sizes_.stack_bytes + sizes_.chunk_bytes; }
  std::size_t blocks_in_use() const;
  std::size_t slabs() const;
  bool guard_pages() const { return guard_.enabled; }
  // Blocks with a guard page below them (all blocks of slabs mapped with guards).
  std::size_t guarded_blocks() const;

  // The word at a stack's low end. The stack never legitimately reaches it, and
  // a page nobody touched reads zero, so checking it costs no resident memory
  // (a written pattern would cost a page per tasklet, as much again as a blocked
  // tasklet's whole footprint). An overflow that happens to leave exactly zero
  // there goes unseen: guard pages catch every one.
  static constexpr std::uint64_t kStackCanary = 0;
  static bool stack_canary_intact(const void* block) {
    return *static_cast<const std::uint64_t*>(block) == kStackCanary;
  }

 private:
  void add_slab_locked();
  bool guard_slab_locked(char* slab);

  const Sizes sizes_;
  const std::size_t blocks_per_slab_;
  const GuardPages guard_;
  // From one block's base to the next: the block plus its guard page, if any.
  const std::size_t stride_;
  mutable std::mutex mutex_;
  std::vector<void*> free_;
  std::vector<void*> slabs_;
  std::size_t in_use_ = 0;
  std::size_t guarded_blocks_ = 0;
  bool guard_fallback_logged_ = false;
};

}  // namespace shard::engine
