#pragma once
// The one boundary between C++ exceptions and Python errors. Every function
// CPython calls (method tables, getset, type slots, module init, trace and
// pending-call callbacks, capsule destructors) is registered as guarded<f>: a
// noexcept trampoline that calls f and turns a C++ exception escaping it into
// a Python one:
//   std::bad_alloc     -> MemoryError
//   std::system_error  -> OSError(errno, what()) (of the generic or system category)
//   anything else      -> RuntimeError(what())
// and returns the slot's failure value (null, -1; a void slot reports it as
// unraisable). On the happy path it costs nothing: f is inlined into it and
// the try block is table-driven.
//
// The C++ exception state is per thread, not per tasklet, and Python code may
// switch tasklets (a finalizer run by the GC, for one): so nothing but copying
// the exception's kind and text runs inside the catch block; the Python error
// is raised after it.
//
// GC slots (tp_traverse, tp_clear) are not guarded: they only visit and clear
// references and cannot fail.

#include <Python.h>

#include <exception>
#include <type_traits>

#include "core/park_at_exit.h"

namespace shard::engine {

// Inside a catch block: copies the current exception's kind and text into a
// per-thread slot. Runs no Python.
void capture_current_exception() noexcept;
// The same for an exception carried from elsewhere (a worker thread's).
void capture_exception(const std::exception_ptr& failure) noexcept;
// After it: raises the captured exception as a Python error; with `context`,
// its text reads "<context>: <what()>".
void raise_captured_exception(const char* context = nullptr) noexcept;
// Or: its what(), for an error of one's own (valid until the next capture).
const char* captured_exception_text() noexcept;
// For a slot that cannot fail (tp_dealloc, tp_finalize, a capsule destructor):
// reports it through sys.unraisablehook, keeping the error already set.
void report_captured_exception() noexcept;

namespace detail {

template <auto F>
struct Guard;

template <typename R, typename... Args, bool kNoexcept, R (*F)(Args...) noexcept(kNoexcept)>
struct Guard<F> {
  static R call(Args... args) noexcept {
    if constexpr (kNoexcept) {
      return F(args...);  // nothing can escape: its own trampoline
    } else {
      try {
        return F(args...);
      } catch (abi::__forced_unwind&) {
        // Not an error: CPython 3.11 ending a thread that took the lock at
        // exit; swallowed, it aborts the process (core/park_at_exit.h).
        park_thread_for_good();
      } catch (...) {
        capture_current_exception();
      }
      if constexpr (std::is_void_v<R>) {
        report_captured_exception();
      } else {
        raise_captured_exception();
        if constexpr (std::is_pointer_v<R>) {
          return nullptr;
        } else {
          return R(-1);  // int and Py_ssize_t slots
        }
      }
    }
  }
};

}  // namespace detail

// f behind the boundary, with f's own signature.
template <auto F>
inline constexpr auto guarded = &detail::Guard<F>::call;

// For a PyMethodDef: f (of the signature its METH_ flags call for) behind the
// boundary, as PyMethodDef stores it.
template <auto F>
PyCFunction as_cfunction() {
  return reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(guarded<F>));
}

}  // namespace shard::engine
