#pragma once
// The part of CPython 3.11's per-thread execution state that belongs to one
// tasklet. Every tasklet of a thread shares that thread's PyThreadState; a switch
// moves these fields out of it into the leaving tasklet and the entering tasklet's
// fields into it. Each field travels for a reason:
//   cframe           the C-level frame chain lives on the tasklet's own C stack
//                    and points at its innermost Python frame
//   recursion depth  how deep this tasklet's own calls are; a new tasklet starts
//                    at zero, and is capped so its C stack cannot overflow
//   exc_info         the exception being handled (`except:` blocks, sys.exc_info)
//   context          contextvars are per tasklet, like per asyncio task
//   datastack_*      Python frames live in a per-thread data stack; each tasklet
//                    has its own root chunk in its stack block
//   trash_delete_nesting  deallocation depth guard, tied to the C stack in use
//   tracing          a trace/profile callback that switches must not leave the
//                    next tasklet marked as "inside the tracer"

#include <Python.h>

#include <climits>

namespace shard::engine {

class PythonState final {
 public:
  // State for a tasklet starting on a fresh stack block. `context` is a new
  // reference or null.
  void init_fresh(_PyCFrame* base_cframe, _PyStackChunk* root_chunk, std::size_t chunk_bytes,
                  _PyErr_StackItem* exc_root, PyObject* context, int recursion_cap);

  // A tasklet that already runs on the thread (the main tasklet) adopts the
  // thread's state as its own.
  void init_running(int recursion_cap) { recursion_cap_ = recursion_cap; }

  void save(PyThreadState* tstate);     // tstate -> this
  void restore(PyThreadState* tstate);  // this -> tstate

  // Around sys.setrecursionlimit while this tasklet runs: CPython must see the
  // real depth, and the cap must hold again under the new limit.
  void drop_recursion_cap(PyThreadState* tstate);
  void reapply_recursion_cap(PyThreadState* tstate);

  // `top_sp`: the top of the innermost frame's evaluation stack, if known.
  int traverse(visitproc visit, void* arg, PyObject* const* top_sp) const;
  void clear_context() { Py_CLEAR(context_); }

  // tasklet.recursion_depth and tasklet.nesting_level: read from `running`,
  // the thread state, while the tasklet runs (null otherwise: what save()
  // kept). The nesting level counts the evaluation loops entered from C below
  // the tasklet's innermost frame (a tasklet's own function runs at level 0),
  // which is what Stackless counts.
  int recursion_depth(const PyThreadState* running) const;
  int nesting_level(const PyThreadState* running) const;

  _PyCFrame* cframe() const { return cframe_; }
  struct _PyInterpreterFrame* top_frame() const {
    return cframe_ != nullptr ? cframe_->current_frame : nullptr;
  }

 private:
  int effective_limit(const PyThreadState* tstate) const;

  _PyCFrame* cframe_ = nullptr;
  int recursion_depth_ = 0;
  int recursion_cap_ = INT_MAX;
  // recursion_limit - effective limit while this tasklet runs: its apparent depth
  // is shifted by this much so CPython's own check fires at the cap.
  int recursion_offset_ = 0;
  _PyErr_StackItem* exc_info_ = nullptr;
  PyObject* context_ = nullptr;
  _PyStackChunk* datastack_chunk_ = nullptr;
  PyObject** datastack_top_ = nullptr;
  PyObject** datastack_limit_ = nullptr;
  int trash_delete_nesting_ = 0;
  int tracing_ = 0;
};

// Whether the thread has a trace or profile function: the value a (re)entered
// tasklet's cframe must carry so the eval loop traces it.
inline uint8_t thread_use_tracing(const PyThreadState* tstate) {
  return (tstate->c_tracefunc != nullptr || tstate->c_profilefunc != nullptr) ? 255 : 0;
}

}  // namespace shard::engine
