#pragma once
// Boost.Asio (header-only, Boost 1.74) for code that starts operations on the
// engine's IO threads. Include this instead of boost/asio.hpp: with GCC 12 in
// C++20 mode Asio 1.74 uses std::exchange without including <utility>.

#include <utility>

#include <boost/asio.hpp>

#include <system_error>

namespace shard::engine {

// An Asio error as the std::error_code the engine's waits return: errno
// values stay in std::system_category (operation_aborted is ECANCELED), so
// raise_wait_error() makes them the right OSError.
inline std::error_code to_error_code(const boost::system::error_code& error) {
  if (!error) return {};
  if (error.category() == boost::system::system_category()) return {error.value(), std::system_category()};
  if (error.category() == boost::system::generic_category()) return {error.value(), std::generic_category()};
  return error;  // Boost's own bridge for Asio's other categories (netdb, addrinfo, misc)
}

}  // namespace shard::engine
