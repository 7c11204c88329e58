#pragma once
// Quantiles near the ends of a distribution without sorting all of it.

#include <ATen/core/Tensor.h>

namespace qimera::quant {

/// at::quantile(values, q) with linear interpolation, bit for bit on finite inputs, for a
/// one-dimensional float tensor. A quantile near 0 or 1 (the 99.99th percentile of an activation)
/// needs only the few values beyond it: they come from a partial selection (topk), which on a
/// million values is an order of magnitude cheaper than the full sort at::quantile does. Other
/// quantiles fall back to at::quantile.
at::Tensor tail_quantile(const at::Tensor& values, double q);

}  // namespace qimera::quant
