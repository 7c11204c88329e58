#include "qimera/quant/fake_quantize.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <algorithm>
#include <cmath>

namespace qimera::quant {
namespace {

// Params of shape [C] act along dim 0 of x: view them as [C, 1, 1, ...] (the reference's view(-1,1,1,1)).
at::Tensor broadcast_to_dim0(const at::Tensor& p, const at::Tensor& x) {
  if (p.dim() == 0 || p.numel() == 1 || x.dim() <= 1) return p.reshape({});
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = p.numel();
  return p.reshape(shape);
}

// Float rounding half to even, branch-free and vectorisable, valid for |t| < 2^22: adding and
// subtracting 1.5 * 2^23 leaves an integer rounded by the FPU's default mode (nearest, ties to even),
// which is what torch.round does. IEEE semantics forbid folding (t + M) - M into t; this file must
// never be built with -ffast-math.
inline float round_half_even(float t) {
  constexpr float kMagic = 12582912.0f;
  return (t + kMagic) - kMagic;
}

// One channel block: y = (clamp(round(s * x - zp)) + zp) / s, the same float32 operations in the
// same order as the ATen composition. The pre-clamp to [lo - 1, hi + 1] keeps round_half_even in its
// valid range without changing the result; NaN passes through (std::max/min keep their first
// argument when comparisons are false), as in torch.clamp. Written so that the compiler vectorises
// it; the AVX2 clone is chosen at run time where the CPU has it.
#if defined(__clang__)
// clang (the sanitizer and fuzzing builds) cannot clone function templates: one portable version.
#define QIMERA_AVX2_CLONES
#else
#define QIMERA_AVX2_CLONES __attribute__((target_clones("avx2", "default")))
#endif

template <bool kMask>
QIMERA_AVX2_CLONES void fake_quantize_block(
    const float* __restrict x, float* __restrict y, uint8_t* __restrict keep, int64_t n,
    float scale, float zp, float lo, float hi) {
  const float lo_wide = lo - 1.0f, hi_wide = hi + 1.0f;
  for (int64_t i = 0; i < n; ++i) {
    float t = scale * x[i];
    t = t - zp;
    t = std::min(std::max(t, lo_wide), hi_wide);
    float q = round_half_even(t);
    if constexpr (kMask) keep[i] = static_cast<uint8_t>((q >= lo) & (q <= hi));
    q = std::min(std::max(q, lo), hi);
    const float sum = q + zp;
    y[i] = sum / scale;
  }
}

void fake_quantize_block(const float* x, float* y, uint8_t* keep, int64_t n, float scale, float zp,
                         float lo, float hi) {
  if (keep) {
    fake_quantize_block<true>(x, y, keep, n, scale, zp, lo, hi);
  } else {
    fake_quantize_block<false>(x, y, nullptr, n, scale, zp, lo, hi);
  }
}

// The kernel walks the storage: every element once, and for per-channel ranges dim 0 outermost so
// that each channel is one block. Both hold for row-major and for channels-last tensors.
bool dense_with_dim0_outermost(const at::Tensor& x) {
  return x.is_contiguous() || (x.dim() == 4 && x.is_contiguous(at::MemoryFormat::ChannelsLast));
}

bool use_cpu_kernel(const at::Tensor& x, const AffineParams& params) {
  return x.device().is_cpu() && x.scalar_type() == at::kFloat && dense_with_dim0_outermost(x) &&
         params.scale.scalar_type() == at::kFloat && params.zero_point.scalar_type() == at::kFloat;
}

// Returns x_hat and, when `want_mask`, the mask of elements that were not clamped.
std::pair<at::Tensor, at::Tensor> fake_quantize_forward(const at::Tensor& x, const AffineParams& p,
                                                        int bits, bool want_mask) {
  const float lo = static_cast<float>(qmin(bits));
  const float hi = static_cast<float>(qmax(bits));
  if (!use_cpu_kernel(x, p)) {
    const auto scale = broadcast_to_dim0(p.scale, x);
    const auto zp = broadcast_to_dim0(p.zero_point, x);
    auto q = at::round(scale * x - zp);
    at::Tensor mask = want_mask ? (q >= lo).logical_and_(q <= hi) : at::Tensor();
    q = at::clamp(q, lo, hi);
    return {(q + zp) / scale, mask};
  }
  auto y = at::empty_like(x);  // the same memory format as x, so y and mask index like its storage
  at::Tensor mask = want_mask ? at::empty_like(x, x.options().dtype(at::kByte)) : at::Tensor();
  const auto scale = p.scale.contiguous().cpu();
  const auto zp = p.zero_point.contiguous().cpu();
  const int64_t channels = scale.numel() == 1 ? 1 : scale.numel();
  require(x.numel() % channels == 0 && (channels == 1 || x.size(0) == channels),
          "fake_quantize: {} per-channel ranges for a tensor of shape {}", channels, x.sizes());
  const int64_t block = channels == 1 ? x.numel() : x.numel() / channels;
  const float* xs = x.data_ptr<float>();
  float* ys = y.data_ptr<float>();
  uint8_t* ms = want_mask ? mask.data_ptr<uint8_t>() : nullptr;
  const float* sc = scale.data_ptr<float>();
  const float* zs = zp.data_ptr<float>();
  constexpr int64_t kGrain = 1 << 15;
  if (channels == 1) {
    at::parallel_for(0, block, kGrain, [&](int64_t begin, int64_t end) {
      fake_quantize_block(xs + begin, ys + begin, ms ? ms + begin : nullptr, end - begin, sc[0], zs[0],
                          lo, hi);
    });
  } else {
    at::parallel_for(0, channels, std::max<int64_t>(1, kGrain / std::max<int64_t>(block, 1)),
                     [&](int64_t begin, int64_t end) {
                       for (int64_t c = begin; c < end; ++c) {
                         fake_quantize_block(xs + c * block, ys + c * block,
                                             ms ? ms + c * block : nullptr, block, sc[c], zs[c], lo, hi);
                       }
                     });
  }
  if (want_mask) mask = mask.to(at::kBool);
  return {y, mask};
}

// Straight-through estimator as an autograd function: the backward is the identity (or masked).
struct FakeQuantizeFunction : public torch::autograd::Function<FakeQuantizeFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            const at::Tensor& scale, const at::Tensor& zero_point, int64_t bits,
                            bool clipped) {
    auto [y, mask] = fake_quantize_forward(x, {scale, zero_point}, static_cast<int>(bits), clipped);
    ctx->saved_data["clipped"] = clipped;
    if (clipped) ctx->save_for_backward({mask});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    at::Tensor grad = grads[0];
    if (ctx->saved_data["clipped"].toBool()) {
      const auto mask = ctx->get_saved_variables()[0];
      grad = grad * mask;
    }
    return {grad, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

std::string to_string(Ste ste) { return ste == Ste::Unclipped ? "unclipped" : "clipped"; }

Ste parse_ste(const std::string& name) {
  if (name == "unclipped") return Ste::Unclipped;
  if (name == "clipped") return Ste::Clipped;
  fail("unknown straight-through estimator '{}': expected unclipped (the reference) or clipped", name);
}

int64_t qmin(int bits) { return -(int64_t{1} << (bits - 1)); }
int64_t qmax(int bits) { return (int64_t{1} << (bits - 1)) - 1; }

void check_bits(int bits) {
  require(bits >= 2 && bits <= 8, "{} bits requested: supported widths are 2 to 8", bits);
}

AffineParams affine_params(int bits, const at::Tensor& lo, const at::Tensor& hi) {
  check_bits(bits);
  at::NoGradGuard no_grad;
  const double levels = static_cast<double>((int64_t{1} << bits) - 1);
  // Python's `n / tensor` is tensor.reciprocal() * n, not a division: keep its float32 rounding.
  auto scale = at::clamp_min(hi - lo, 1e-8).reciprocal() * levels;
  auto zero_point = at::round(scale * lo) + static_cast<double>(int64_t{1} << (bits - 1));
  return {scale, zero_point};
}

ChannelRange channel_range(const at::Tensor& weight) {
  at::NoGradGuard no_grad;
  const auto flat = weight.detach().reshape({weight.size(0), -1});
  auto [lo, hi] = at::aminmax(flat, 1);
  return {lo, hi};
}

at::Tensor quantize(const at::Tensor& x, const AffineParams& params, int bits) {
  check_bits(bits);
  const auto scale = broadcast_to_dim0(params.scale, x);
  const auto zp = broadcast_to_dim0(params.zero_point, x);
  return at::clamp(at::round(scale * x - zp), static_cast<double>(qmin(bits)),
                   static_cast<double>(qmax(bits)));
}

at::Tensor dequantize(const at::Tensor& q, const AffineParams& params) {
  return (q + broadcast_to_dim0(params.zero_point, q)) / broadcast_to_dim0(params.scale, q);
}

at::Tensor fake_quantize(const at::Tensor& x, const AffineParams& params, int bits, Ste ste) {
  check_bits(bits);
  return FakeQuantizeFunction::apply(x, params.scale.detach(), params.zero_point.detach(), bits,
                                     ste == Ste::Clipped);
}

at::Tensor fake_quantize_weight(const at::Tensor& weight, int bits, Ste ste) {
  const auto range = channel_range(weight);
  return fake_quantize(weight, affine_params(bits, range.lo, range.hi), bits, ste);
}

}  // namespace qimera::quant
