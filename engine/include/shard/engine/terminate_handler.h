#pragma once
// std::terminate made diagnosable: without a handler libstdc++ prints only
// "terminate called without an active exception" and aborts, which says
// neither where nor why (a joinable std::thread destroyed, a forced unwind
// through a noexcept frame, a `throw;` with nothing to rethrow).

namespace shard::engine {

// Writes to stderr the C++ backtrace of the calling thread and, when an
// exception is active, its type and what(), then aborts (SIGABRT: CPython's
// faulthandler, where enabled, then dumps the Python stacks). Only
// async-signal-tolerant calls after the exception's text: the process is in
// an unknown state. Installed by install_terminate_handler(); public so that a
// test can call it directly.
[[noreturn]] void report_terminate_and_abort() noexcept;

// std::set_terminate(report_terminate_and_abort), once at start-up.
void install_terminate_handler() noexcept;

}  // namespace shard::engine
