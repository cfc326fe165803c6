// The scheduler from C++: ring order, round-robin switching, stack reuse, and
// the thread state a switch must leave as it found it.
#include "shard/engine/scheduler.h"

#include <gtest/gtest.h>

#include <vector>

#include "shard/engine/stack_pool.h"
#include "shard/engine/stackless_module.h"

namespace shard::engine {
namespace {

class PythonEnvironment final : public ::testing::Environment {
 public:
  void SetUp() override {
    PyImport_AppendInittab("stackless", PyInit_stackless);
    Py_Initialize();
    PyObject* module = PyImport_ImportModule("stackless");
    ASSERT_NE(module, nullptr);
    Py_DECREF(module);
  }
  void TearDown() override { Py_FinalizeEx(); }
};

const auto* const kEnvironment = ::testing::AddGlobalTestEnvironment(new PythonEnvironment);

std::vector<long> trace;

// A tasklet body: records its id, yields `yields` times, records again.
PyObject* record_and_yield(PyObject* self, PyObject* args) {
  long id = PyLong_AsLong(self);
  long yields = PyLong_AsLong(PyTuple_GET_ITEM(args, 0));
  for (long i = 0; i <= yields; ++i) {
    trace.push_back(id);
    if (i == yields) break;
    PyObject* result = Scheduler::current_or_create()->schedule(false, nullptr);
    if (result == nullptr) return nullptr;
    Py_DECREF(result);
  }
  Py_RETURN_NONE;
}

PyMethodDef record_def = {"record_and_yield", record_and_yield, METH_VARARGS, nullptr};

Tasklet* make_tasklet(long id, long yields) {
  PyObject* self = PyLong_FromLong(id);
  PyObject* func = PyCFunction_New(&record_def, self);
  Py_DECREF(self);
  PyObject* tasklet = PyObject_CallOneArg(reinterpret_cast<PyObject*>(&TaskletType), func);
  Py_DECREF(func);
  EXPECT_NE(tasklet, nullptr);
  PyObject* setup = PyObject_CallMethod(tasklet, "setup", "l", yields);
  EXPECT_NE(setup, nullptr);
  Py_XDECREF(setup);
  return as_tasklet(tasklet);
}

void run_all() {
  PyObject* result = Scheduler::current_or_create()->run_watchdog({});
  ASSERT_NE(result, nullptr);
  Py_DECREF(result);
}

TEST(Scheduler, InsertAppendsBeforeTheHead) {
  Scheduler* sched = Scheduler::current_or_create();
  Tasklet* a = make_tasklet(1, 0);
  Tasklet* b = make_tasklet(2, 0);
  EXPECT_EQ(sched->runcount(), 3);
  Tasklet* main = sched->main();
  EXPECT_EQ(main->next_, a);
  EXPECT_EQ(a->next_, b);
  EXPECT_EQ(b->next_, main);
  EXPECT_EQ(main->prev_, b);
  sched->remove(a);
  EXPECT_EQ(main->next_, b);
  EXPECT_EQ(sched->runcount(), 2);
  EXPECT_FALSE(a->in_ring_);
  Py_DECREF(a);
  run_all();
  Py_DECREF(b);
}

TEST(Scheduler, ScheduleIsRoundRobin) {
  trace.clear();
  Tasklet* tasklets[] = {make_tasklet(1, 2), make_tasklet(2, 2), make_tasklet(3, 2)};
  run_all();
  EXPECT_EQ(trace, (std::vector<long>{1, 2, 3, 1, 2, 3, 1, 2, 3}));
  for (Tasklet* t : tasklets) {
    EXPECT_TRUE(t->finished_);
    Py_DECREF(t);
  }
  EXPECT_EQ(Scheduler::current_or_create()->runcount(), 1);
}

TEST(Scheduler, FinishedTaskletsReturnTheirStacks) {
  StackPool& pool = StackPool::instance();
  std::size_t before = pool.blocks_in_use();
  std::vector<Tasklet*> tasklets;
  for (long i = 0; i < 2000; ++i) tasklets.push_back(make_tasklet(i, 1));
  run_all();
  EXPECT_EQ(pool.blocks_in_use(), before);
  for (Tasklet* t : tasklets) Py_DECREF(t);
}

TEST(Scheduler, SwitchesLeaveTheThreadStateAsFound) {
  PyThreadState* tstate = PyThreadState_Get();
  auto* chunk = tstate->datastack_chunk;
  auto* top = tstate->datastack_top;
  int remaining = tstate->recursion_remaining;
  auto* exc_info = tstate->exc_info;
  auto* cframe = tstate->cframe;
  Tasklet* t = make_tasklet(7, 3);
  run_all();
  EXPECT_EQ(tstate->datastack_chunk, chunk);
  EXPECT_EQ(tstate->datastack_top, top);
  EXPECT_EQ(tstate->recursion_remaining, remaining);
  EXPECT_EQ(tstate->exc_info, exc_info);
  EXPECT_EQ(tstate->cframe, cframe);
  Py_DECREF(t);
}

TEST(Scheduler, EachSwitchIsCounted) {
  Scheduler* sched = Scheduler::current_or_create();
  uint64_t before = sched->switches();
  Tasklet* t = make_tasklet(1, 4);
  run_all();
  // main -> t, then 4 yields of t with nobody else (no switch), then t -> main.
  EXPECT_EQ(sched->switches() - before, 2u);
  Py_DECREF(t);
}

}  // namespace
}  // namespace shard::engine
