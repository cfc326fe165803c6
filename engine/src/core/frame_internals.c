// Internal-header code for frame_internals.h; CPython 3.11 only.
#define Py_BUILD_CORE 1
#include "core/frame_internals.h"

#include <limits.h>

#include "internal/pycore_frame.h"

#if PY_VERSION_HEX < 0x030B0000 || PY_VERSION_HEX >= 0x030C0000
#error "frame_internals.c knows CPython 3.11's frame layout only"
#endif

// How many localsplus slots hold live references: the fast locals always; the
// evaluation stack up to `sp` when it is known and inside this frame's stack.
static int visible_slots(const _PyInterpreterFrame* frame, PyObject* const* sp) {
  int locals = frame->f_code->co_nlocalsplus;
  int slots = frame->stacktop > locals ? frame->stacktop : locals;
  if (sp != NULL) {
    PyObject* const* base = frame->localsplus + locals;
    if (sp >= base && sp <= base + frame->f_code->co_stacksize) {
      int top = (int)(sp - frame->localsplus);
      if (top > slots) slots = top;
    }
  }
  return slots;
}

int shard_frames_traverse(struct _PyInterpreterFrame* frame, PyObject* const* top_sp, visitproc visit,
                          void* arg) {
  PyObject* const* sp = top_sp;  // applies to the innermost frame only
  for (; frame != NULL; frame = frame->previous, sp = NULL) {
    if (frame->owner != FRAME_OWNED_BY_THREAD) continue;
    Py_VISIT(frame->frame_obj);
    Py_VISIT(frame->f_locals);
    Py_VISIT(frame->f_func);
    Py_VISIT(frame->f_code);
    int slots = visible_slots(frame, sp);
    for (int i = 0; i < slots; i++) Py_VISIT(frame->localsplus[i]);
  }
  return 0;
}

#include "internal/pycore_atomic.h"
#include "internal/pycore_gc.h"
#include "internal/pycore_interp.h"
#include "internal/pycore_pystate.h"
#include "internal/pycore_runtime.h"

void shard_eval_breaker_set(PyInterpreterState* interp) {
  _Py_atomic_store_relaxed(&interp->ceval.eval_breaker, 1);
}

void shard_eval_breaker_set_as_signal(PyInterpreterState* interp) {
  _Py_atomic_store_relaxed(&_PyRuntime.ceval.signals_pending, 1);
  _Py_atomic_store_relaxed(&interp->ceval.eval_breaker, 1);
}

void shard_eval_breaker_recompute(PyInterpreterState* interp) {
  struct _ceval_state* ceval2 = &interp->ceval;
  int pending = _Py_atomic_load_relaxed(&ceval2->gil_drop_request) |
                (_Py_atomic_load_relaxed(&_PyRuntime.ceval.signals_pending) &&
                 _Py_ThreadCanHandleSignals(interp)) |
                (_Py_atomic_load_relaxed(&ceval2->pending.calls_to_do) &&
                 _Py_ThreadCanHandlePendingCalls()) |
                ceval2->pending.async_exc;
  _Py_atomic_store_relaxed(&ceval2->eval_breaker, pending);
}

void shard_gc_object_reuse(PyObject* op) {
  PyGC_Head* gc = _Py_AS_GC(op);
  gc->_gc_next = 0;
  gc->_gc_prev = 0;
  _Py_NewReference(op);
}
