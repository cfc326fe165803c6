// Not a test of the engine: a GoogleTest binary that leaves in the middle of
// its run with status 0, as a switch that jumped into _exit(0) would. ctest must
// count it as failed (cmake/ShardTest.cmake, test harness_rejects_early_exit_gtest).
#include <gtest/gtest.h>
#include <unistd.h>

TEST(ExitsEarly, LeavesWithStatusZeroBeforeTheSummary) { _exit(0); }

TEST(ExitsEarly, WouldHavePassed) { SUCCEED(); }
