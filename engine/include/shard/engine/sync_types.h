#pragma once
// Python types of uthread's blocking primitives (see sync_types.cpp).
#include <Python.h>

namespace shard::engine {

extern PyTypeObject SemaphoreType;
extern PyTypeObject RLockType;
extern PyTypeObject EventType;
extern PyTypeObject WaitQueueType;

}  // namespace shard::engine
