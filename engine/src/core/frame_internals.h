#pragma once
// The few operations on CPython 3.11's interpreter frames that need its internal
// headers. Those headers do not compile as C++, so they live in a small C file
// (frame_internals.c) behind this C interface.

#include <Python.h>

#ifdef __cplusplus
extern "C" {
#endif

struct _PyInterpreterFrame;

// Visits what the frames of a suspended tasklet hold, from its innermost frame
// down to the frame its fiber started with. Visits each reference once: frames
// owned by a generator are left to the generator's own traversal. `top_sp` is
// the top of the innermost frame's evaluation stack as its switch point saw it
// (args + nargs of a vectorcall), or null; a frame suspended inside a call into
// C otherwise has no recorded stack depth, and only its fast locals are visited
// then (what is not visited only keeps objects alive).
int shard_frames_traverse(struct _PyInterpreterFrame* top, PyObject* const* top_sp, visitproc visit,
                          void* arg);

#ifdef __cplusplus
}
#endif

#ifdef __cplusplus
extern "C" {
#endif

// Prepares a deallocated, untracked GC object's memory for reuse by a free list:
// clears its GC header (the "finalized" flag included, so the new object's
// finalizer runs) and gives it a fresh reference.
void shard_gc_object_reuse(PyObject* op);

// Makes the eval loop of `interp` leave its fast path at the next check (a
// plain atomic store, safe in a signal handler).
void shard_eval_breaker_set(PyInterpreterState* interp);
// The same, the way CPython's own signal handler raises it
// (_PyEval_SignalReceived): "signals pending" too, so that the eval loop's
// handling of it recomputes the breaker. Raised alone, with nothing pending,
// the breaker stays raised: 3.11's tracing path at a function's RESUME checks
// it before calling the trace function and then dispatches the same RESUME
// again, forever, until something else recomputes it (the GIL changing
// hands, a real signal). Atomic stores only: safe in a signal handler.
void shard_eval_breaker_set_as_signal(PyInterpreterState* interp);
// Recomputes the eval breaker from what is really pending, as CPython does,
// after shard_eval_breaker_set() made it fire for us. Called from the thread
// that runs `interp`'s Python code, GIL held.
void shard_eval_breaker_recompute(PyInterpreterState* interp);

#ifdef __cplusplus
}
#endif
