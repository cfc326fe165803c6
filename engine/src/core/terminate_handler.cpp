#include "shard/engine/terminate_handler.h"

#include <cxxabi.h>
#include <execinfo.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <typeinfo>

namespace shard::engine {
namespace {

constexpr int kMaxFrames = 128;

void write_text(const char* text) noexcept {
  size_t left = std::strlen(text);
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, text, left);
    if (n <= 0) return;
    text += n;
    left -= static_cast<size_t>(n);
  }
}

// The active exception's type (demangled where the demangler can) and, for a
// std::exception, its what(). Nothing escapes: a what() that throws is skipped.
void describe_active_exception() noexcept {
  std::type_info* type = abi::__cxa_current_exception_type();
  std::exception_ptr active = std::current_exception();
  if (type == nullptr || active == nullptr) {
    // Not a C++ exception: a forced unwind (pthread_exit, which CPython 3.11
    // calls on a thread that takes the interpreter lock during finalization)
    // through a noexcept frame ends here too.
    write_text("shard: std::terminate called without an active exception\n");
    return;
  }
  int status = -1;
  char* demangled = abi::__cxa_demangle(type->name(), nullptr, nullptr, &status);
  write_text("shard: std::terminate called with an active exception of type ");
  write_text(status == 0 && demangled != nullptr ? demangled : type->name());
  std::free(demangled);
  try {
    std::rethrow_exception(active);
  } catch (const std::exception& e) {
    write_text(": ");
    write_text(e.what());
  } catch (...) {
  }
  write_text("\n");
}

}  // namespace

void report_terminate_and_abort() noexcept {
  // One report: a second terminate (from a destructor during this one) aborts.
  static bool reporting = false;
  if (!reporting) {
    reporting = true;
    describe_active_exception();
    write_text("shard: C++ backtrace of the terminating thread:\n");
    void* frames[kMaxFrames];
    int count = ::backtrace(frames, kMaxFrames);
    ::backtrace_symbols_fd(frames, count, STDERR_FILENO);
  }
  std::abort();
}

void install_terminate_handler() noexcept {
  // backtrace() loads libgcc_s on its first call, which allocates: done now,
  // while the process is sane, not in the handler.
  void* frame;
  ::backtrace(&frame, 1);
  std::set_terminate(report_terminate_and_abort);
}

}  // namespace shard::engine
