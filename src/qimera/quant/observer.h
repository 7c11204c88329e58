// Activation range observers: they only gather statistics of the tensors they see; a fake quantizer
// reads the range from them. Their state lives in tensors (buffers of the owning module) so that it is
// saved with the model and updated on the device without host synchronisation.
#pragma once

#include <ATen/core/Tensor.h>
#include <nlohmann/json_fwd.hpp>

#include <string>

namespace qimera::quant {

enum class ObserverKind {
  // The reference's EMA (beta 0.9) with its compounding "bias correction": for exact reproduction
  // only; ranges are thousands of times too wide until ~200 updates (method.md section 1).
  ReferenceEma,
  // A correctly bias-corrected EMA: keeps the raw average, divides by 1 - beta^t when read. Default.
  Ema,
  // Running minimum / maximum (including 0), for post-training calibration.
  MinMax,
  // Mean over batches of each batch's low / high percentile, for post-training calibration.
  Percentile,
  // Mean over batches of each batch's clipping range that minimises the quantization error
  // (squared, at the layer's bit width): the batch's [min, max] scaled by the best of 100 factors
  // 0.01 .. 1. Clipping matters most at few bits, where percentile ranges are far from optimal.
  Mse,
};

std::string to_string(ObserverKind kind);
ObserverKind parse_observer(const std::string& name);

struct ObserverOptions {
  ObserverKind kind = ObserverKind::Ema;
  double beta = 0.9;           // EMA kinds
  double percentile = 99.99;   // Percentile: the high percentile; the low one is 100 - percentile
  void validate() const;
  nlohmann::json to_json() const;
  static ObserverOptions from_json(const nlohmann::json& j);
};

/// The observer's state: three tensors registered as buffers by the owning module.
///   ReferenceEma: lo, hi = the reference's x_min / x_max; aux = beta_t (starts at 1).
///   Ema:          lo, hi = raw averages;                  aux = beta^t (starts at 1).
///   MinMax:       lo, hi = running min / max (start 0);   aux = number of updates.
///   Percentile,
///   Mse:          lo, hi = running means;                 aux = number of updates.
struct ObserverState {
  at::Tensor lo, hi, aux;  // float32, shape [1]
};

ObserverState initial_observer_state(const ObserverOptions& options);

/// Folds the statistics of `x` into `state` (in place, no gradient, no host synchronisation).
/// `bits`: the width the range will quantize to (only the Mse kind depends on it).
void observe(const ObserverOptions& options, ObserverState& state, const at::Tensor& x, int bits);

/// The range [lo, hi] to quantize with, shape [1] each.
std::pair<at::Tensor, at::Tensor> observed_range(const ObserverOptions& options,
                                                 const ObserverState& state);

}  // namespace qimera::quant
