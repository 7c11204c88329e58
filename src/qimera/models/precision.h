// Mixed precision for the networks that only produce images and scores (the generator G and the
// teacher P): inside an AutocastScope, convolutions and linear layers compute in bfloat16 (LibTorch's
// autocast: weights stay float32, so optimizer state and updates are float32). Q never runs inside
// one: its fake quantization and its updates stay float32.
#pragma once

#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>

namespace qimera::models {

enum class Precision { Float32, BFloat16 };

/// Whether autocast is on for `device` in this thread.
bool autocast_enabled(c10::DeviceType device);

/// While alive, `device` computes in `precision` in this thread: autocast to bfloat16 on for
/// BFloat16, off for Float32 (so a float32 network stays float32 even inside a bfloat16 scope).
/// Restores the previous state on exit and drops the cached weight casts with the outermost
/// bfloat16 scope, so a weight updated after the scope is cast afresh next time.
class AutocastScope {
 public:
  AutocastScope(Precision precision, c10::DeviceType device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool reduced_ = false;
  bool was_enabled_ = false;
  c10::ScalarType previous_dtype_ = c10::ScalarType::Float;
  c10::DeviceType device_;
};

}  // namespace qimera::models
