// Asymmetric linear quantization as the reference implementation computes it (method.md section 1),
// as pure functions. For a range [lo, hi] and n bits:
//   scale = (2^n - 1) / max(hi - lo, 1e-8)
//   zp    = round(scale * lo) + 2^(n-1)
//   q     = clamp(round(scale * x - zp), -2^(n-1), 2^(n-1) - 1)
//   x_hat = (q + zp) / scale
// Every float32 operation happens in this order so that results match PyTorch bit for bit.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace qimera::quant {

/// How a range is shared across a tensor: one for the whole tensor, or one per output channel (dim 0).
enum class Granularity { PerTensor, PerChannel };

/// Straight-through gradient of fake quantization. The reference passes the gradient unchanged
/// everywhere (Unclipped); Clipped zeroes it where the value was clamped to the integer range.
enum class Ste { Unclipped, Clipped };

std::string to_string(Ste ste);
Ste parse_ste(const std::string& name);

/// Lowest and highest integer of an n-bit signed grid: [-2^(n-1), 2^(n-1) - 1].
int64_t qmin(int bits);
int64_t qmax(int bits);

/// Checks 2 <= bits <= 8 (the supported widths).
void check_bits(int bits);

struct AffineParams {
  at::Tensor scale;       // float32, shape of lo/hi
  at::Tensor zero_point;  // float32 holding integers, same shape
};

/// Scale and integer zero point for the range [lo, hi] (any shape; no gradient).
/// Example: auto p = affine_params(4, torch::zeros({}), torch::ones({}));  // scale 15, zp 8
AffineParams affine_params(int bits, const at::Tensor& lo, const at::Tensor& hi);

/// Per-output-channel minimum and maximum of a weight tensor viewed as [out, -1].
struct ChannelRange {
  at::Tensor lo, hi;  // [out]
};
ChannelRange channel_range(const at::Tensor& weight);

/// Integer grid values (as float32) of x: clamp(round(scale * x - zp), qmin, qmax). Per-channel
/// params ([C]) apply along dim 0; 0-dim or single-element params to the whole tensor.
at::Tensor quantize(const at::Tensor& x, const AffineParams& params, int bits);

/// Real values of grid integers q: (q + zp) / scale.
at::Tensor dequantize(const at::Tensor& q, const AffineParams& params);

/// dequantize(quantize(x)) in one pass, with a straight-through gradient to x (none to the params).
at::Tensor fake_quantize(const at::Tensor& x, const AffineParams& params, int bits, Ste ste);

/// Per-output-channel fake quantization of a weight, its range recomputed from the current values.
at::Tensor fake_quantize_weight(const at::Tensor& weight, int bits, Ste ste);

}  // namespace qimera::quant
