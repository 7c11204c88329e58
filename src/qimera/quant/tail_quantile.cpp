#include "qimera/quant/tail_quantile.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>

#include <cmath>

namespace qimera::quant {
namespace {
// Partial selection beats sorting while it keeps at most this share of the values.
constexpr int64_t kTailShare = 16;
}  // namespace

at::Tensor tail_quantile(const at::Tensor& values, double q) {
  require(values.dim() == 1 && values.numel() > 0, "tail_quantile needs a non-empty 1-d tensor");
  require(q >= 0 && q <= 1, "quantile {} must be in [0, 1]", q);
  const int64_t n = values.numel();
  // The rank exactly as at::quantile computes it: one float32 product, truncated and ceiled. It
  // depends only on n and q, so it is plain host arithmetic (no tensors, no device synchronisation).
  const float rank = static_cast<float>(q) * static_cast<float>(n - 1);
  const auto below = static_cast<int64_t>(rank);
  const auto above = static_cast<int64_t>(std::ceil(rank));
  const bool upper = q > 0.5;
  const int64_t k = upper ? n - below : above + 1;  // values from the nearer end up to the ranks
  if (k * kTailShare > n) return at::quantile(values, q);
  const float weight = rank - static_cast<float>(below);
  const auto tail = std::get<0>(values.topk(k, 0, /*largest=*/upper, /*sorted=*/true));
  // tail is sorted from the nearer end: the i-th smallest is tail[i] (lower) or tail[n-1-i] (upper).
  const auto at_rank = [&](int64_t i) { return tail.narrow(0, upper ? n - 1 - i : i, 1); };
  return at::lerp(at_rank(below), at_rank(above), weight).reshape({});
}

}  // namespace qimera::quant
