#pragma once
// The embedded interpreter with `_engine`, the dispatcher and two IO threads,
// set up once per test binary (gtest's global environment), for the gtests of
// operations that park the main tasklet on the IO threads.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>

#include "shard/engine/dispatcher.h"
#include "shard/engine/engine_module.h"
#include "shard/engine/io_pool.h"
#include "shard/engine/stackless_module.h"

namespace shard::engine::testing {

// A deadline `ms` from now on the engine's clock (steady_clock, in ns).
inline int64_t in_ms(int ms) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch() +
                                                              std::chrono::milliseconds(ms))
      .count();
}

class IoEnvironment final : public ::testing::Environment {
 public:
  void SetUp() override {
    PyImport_AppendInittab("stackless", PyInit_stackless);
    PyImport_AppendInittab("_engine", PyInit__engine);
    Py_Initialize();
    PyObject* module = PyImport_ImportModule("_engine");
    ASSERT_NE(module, nullptr);
    Py_DECREF(module);
    ASSERT_NE(Dispatcher::start(), nullptr);
    ASSERT_FALSE(IoPool::instance().start(2));
  }
  void TearDown() override {
    Py_BEGIN_ALLOW_THREADS
    IoPool::instance().stop();
    Py_END_ALLOW_THREADS
    Py_FinalizeEx();
  }
};

// Registered once in each binary that includes this header.
inline const auto* const kIoEnvironment = ::testing::AddGlobalTestEnvironment(new IoEnvironment);

}  // namespace shard::engine::testing
