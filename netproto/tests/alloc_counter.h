#pragma once
// A test binary linked with alloc_counter.cpp counts its heap allocations:
// how many, the largest single one since the last reset, and the bytes in
// use (what operator new handed out and delete has not taken back).
#include <cstddef>

namespace shard::testing {
std::size_t allocations() noexcept;
std::size_t largest_allocation() noexcept;
void reset_largest_allocation() noexcept;
std::size_t live_bytes() noexcept;
}  // namespace shard::testing
