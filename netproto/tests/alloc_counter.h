#pragma once
// A test binary linked with alloc_counter.cpp counts its heap allocations:
// how many, and the largest single one since the last reset.
#include <cstddef>

namespace shard::testing {
std::size_t allocations() noexcept;
std::size_t largest_allocation() noexcept;
void reset_largest_allocation() noexcept;
}  // namespace shard::testing
