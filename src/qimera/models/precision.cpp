#include "qimera/models/precision.h"

#include "qimera/core/error.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace qimera::models {
namespace {

// LibTorch 2.4 replaced the per-device autocast functions by ones taking the device type (the old
// ones warn there); 1.13 has only the old ones.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool enabled(c10::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
void set_enabled(c10::DeviceType d, bool on) { at::autocast::set_autocast_enabled(d, on); }
c10::ScalarType dtype(c10::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
void set_dtype(c10::DeviceType d, c10::ScalarType t) { at::autocast::set_autocast_dtype(d, t); }
#else
bool enabled(c10::DeviceType d) {
  return d == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
void set_enabled(c10::DeviceType d, bool on) {
  if (d == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_cpu_enabled(on);
  }
}
c10::ScalarType dtype(c10::DeviceType d) {
  return d == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                    : at::autocast::get_autocast_cpu_dtype();
}
void set_dtype(c10::DeviceType d, c10::ScalarType t) {
  if (d == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(t);
  } else {
    at::autocast::set_autocast_cpu_dtype(t);
  }
}
#endif

}  // namespace

bool autocast_enabled(c10::DeviceType device) { return enabled(device); }

AutocastScope::AutocastScope(Precision precision, c10::DeviceType device) : device_(device) {
  reduced_ = precision == Precision::BFloat16;
  require(!reduced_ || device == c10::DeviceType::CPU || device == c10::DeviceType::CUDA,
          "--precision bf16 needs a CPU or CUDA device");
  was_enabled_ = enabled(device);
  previous_dtype_ = dtype(device);
  set_enabled(device, reduced_);
  if (!reduced_) return;
  set_dtype(device, c10::ScalarType::BFloat16);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (reduced_ && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_enabled(device_, was_enabled_);
  set_dtype(device_, previous_dtype_);
}

}  // namespace qimera::models
