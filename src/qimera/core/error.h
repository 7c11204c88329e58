// Errors the library reports to its caller: a user's mistake or bad input, with a message that says
// what is wrong and, where it can, how to fix it. Only main() catches them.
#pragma once

#include "qimera/core/fmt_torch.h"

#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace qimera {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Throws qimera::Error with a fmt-formatted message.
/// Example: fail("{}: wrong magic number {:#x}", path, magic);
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

/// Throws qimera::Error when `condition` is false; the message is only formatted on failure.
template <typename... Args>
void require(bool condition, fmt::format_string<Args...> format, Args&&... args) {
  if (!condition) fail(format, std::forward<Args>(args)...);
}

}  // namespace qimera
