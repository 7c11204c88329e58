// fmt support for the LibTorch types that error messages name: dtypes and devices (shapes, being
// ranges, format through fmt/ranges.h as [2, 3]).
#pragma once

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

template <>
struct fmt::formatter<c10::ScalarType> : fmt::formatter<std::string_view> {
  template <typename Context>
  auto format(c10::ScalarType type, Context& ctx) const {
    return fmt::formatter<std::string_view>::format(c10::toString(type), ctx);
  }
};

template <>
struct fmt::formatter<c10::Device> : fmt::formatter<std::string> {
  template <typename Context>
  auto format(const c10::Device& device, Context& ctx) const {
    return fmt::formatter<std::string>::format(device.str(), ctx);
  }
};
