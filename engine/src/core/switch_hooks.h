#pragma once
// Stackless's monitoring hooks and the switch trap: what its module functions
// set_schedule_callback, set_channel_callback, set_error_handler and
// switch_trap control.
//
// The switch and channel paths are the hot path: with nothing installed each
// hook costs one load and one predictable branch there.
//
// The schedule callback runs at one safe point: on the leaving tasklet's stack,
// before its interpreter state is saved and the thread state handed over
// (Scheduler::switch_to, and the end of Scheduler::run_body for a finishing
// tasklet). That is where Stackless calls it too (slp_schedule_task, before
// the transfer), so stackless.current is `prev` inside it. Never inside the
// switch path proper: no Python code may run while the thread state is patched.
#include <Python.h>

#include "shard/engine/tasklet.h"

namespace shard::engine::hooks {

// Interpreter-wide, as in Stackless; read and written under the GIL. Owned
// references, null when unset.
inline PyObject* schedule_callback = nullptr;
inline PyObject* channel_callback = nullptr;
inline PyObject* error_handler = nullptr;

// Stackless's switch trap level, per thread: while non-zero, a switch raises
// RuntimeError("switch_trap") instead of taking place. A callback runs with
// the level raised, so a callback that tries to switch gets that error (Stackless
// forbids switching there and aborts the process on it). Changed only through
// adjust_switch_trap().
inline thread_local int switch_trap = 0;

// Non-zero while a schedule callback is installed or some thread's switch trap
// is up: the one word a switch tests (GIL held) before it looks at either. A
// thread that ends with its trap up leaves it set: switches then only take the
// slower path.
inline int switch_hooks_in_use = 0;

// Adds `change` to this thread's switch trap level; returns the old level.
int adjust_switch_trap(int change) noexcept;
// Installs the schedule callback (a new reference or null); returns the old one.
PyObject* exchange_schedule_callback(PyObject* callback) noexcept;

// callback(prev, next), prev None for a main tasklet that just came into
// being (Stackless's convention). Its error is reported as unraisable, as
// Stackless does ("Error in scheduling callback"); the error already set, if
// any, is kept.
void call_schedule_callback(Tasklet* prev, Tasklet* next) noexcept;

// callback(channel, tasklet, sending, willblock); a callback's error is
// dropped and the error already set kept, as Stackless does. False (with
// RuntimeError set) for a channel action inside a callback.
bool call_channel_callback(PyObject* channel, Tasklet* tasklet, bool sending, bool willblock) noexcept;

// The error handler with the tasklet's uncaught error (handler(type, value,
// tb)): true when it handled it, false with its own error in *error
// otherwise (that one goes to main, as Stackless does). Consumes *error.
bool call_error_handler(PyObject** error) noexcept;

}  // namespace shard::engine::hooks
