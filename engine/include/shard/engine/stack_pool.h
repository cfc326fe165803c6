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
// per tasklet (see recursion_cap() in python_state.h).
//
// Slabs are mapped MAP_NORESERVE: a block's pages cost memory only once touched.
// The pool is shared by all threads; a finished tasklet's block goes back to it
// from whichever thread it ran on.

#include <cstddef>
#include <mutex>
#include <vector>

namespace shard::engine {

class StackPool final {
 public:
  struct Sizes {
    std::size_t stack_bytes;
    std::size_t chunk_bytes;
  };

  explicit StackPool(Sizes sizes, std::size_t blocks_per_slab = 256);
  ~StackPool();
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;

  // The process-wide pool used by tasklets; sizes come from the environment
  // (SHARD_TASKLET_STACK_KB) or defaults.
  static StackPool& instance();

  // Returns the base (lowest address) of a block of block_bytes(). Throws
  // std::system_error when the address space is exhausted.
  void* acquire();
  void release(void* block);

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

 private:
  void add_slab_locked();

  const Sizes sizes_;
  const std::size_t blocks_per_slab_;
  mutable std::mutex mutex_;
  std::vector<void*> free_;
  std::vector<void*> slabs_;
  std::size_t in_use_ = 0;
};

}  // namespace shard::engine
