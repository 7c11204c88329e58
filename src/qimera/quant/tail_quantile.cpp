#include "qimera/quant/tail_quantile.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>

namespace qimera::quant {
namespace {
// Partial selection beats sorting while it keeps at most this share of the values.
constexpr int64_t kTailShare = 16;
}  // namespace

at::Tensor tail_quantile(const at::Tensor& values, double q) {
  require(values.dim() == 1 && values.numel() > 0, "tail_quantile needs a non-empty 1-d tensor");
  require(q >= 0 && q <= 1, "quantile {} must be in [0, 1]", q);
  const int64_t n = values.numel();
  // The ranks exactly as at::quantile computes them: in float32, truncated and ceiled. They
  // depend only on n and q, so they are computed on the host (no device synchronisation).
  const auto rank = at::full({1}, q, at::kFloat) * (n - 1);
  const int64_t below = rank.to(at::kLong).item<int64_t>();
  const int64_t above = rank.ceil().to(at::kLong).item<int64_t>();
  const bool upper = q > 0.5;
  const int64_t k = upper ? n - below : above + 1;  // values from the nearer end up to the ranks
  if (k * kTailShare > n) return at::quantile(values, q);
  const auto weight = (rank - below).to(values.device());
  const auto tail = std::get<0>(values.topk(k, 0, /*largest=*/upper, /*sorted=*/true));
  // tail is sorted from the nearer end: the i-th smallest is tail[i] (lower) or tail[n-1-i] (upper).
  const auto at_rank = [&](int64_t i) { return tail.narrow(0, upper ? n - 1 - i : i, 1); };
  return at::lerp(at_rank(below), at_rank(above), weight).reshape({});
}

}  // namespace qimera::quant
