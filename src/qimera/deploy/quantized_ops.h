// LibTorch's quantized CPU operators, called through the dispatcher: the C++ frontend has no
// quantized modules, but the operators that PyTorch's own quantized modules use (quantized::conv2d,
// quantized::add_relu, ...) are registered in libtorch_cpu and reachable by name. They take quint8
// activations and per-channel symmetric qint8 weights on the oneDNN engine (which rejects weight
// zero points other than 0: see int8_engine.h for what that means for the reference's weights).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <string>
#include <vector>

namespace qimera::deploy {

/// Selects the best quantized engine this LibTorch has (onednn, else x86, fbgemm, qnnpack) for the
/// whole process and returns its name; errors if there is none.
std::string select_quantized_engine();

/// Per-channel (dim 0) qint8 weight from int8 integers and double scales, zero points 0.
at::Tensor make_qint8_weight(const at::Tensor& int8_values, const at::Tensor& scales);

/// A prepacked convolution (quantized::conv2d_prepack); bias is float32 or undefined.
c10::IValue prepack_conv2d(const at::Tensor& qweight, const at::Tensor& bias, int64_t stride,
                           int64_t padding, int64_t dilation, int64_t groups);

/// quantized::conv2d / conv2d_relu: quint8 in, quint8 out with the given output scale / zero point.
at::Tensor quantized_conv2d(const at::Tensor& qx, const c10::IValue& packed, bool relu,
                            double output_scale, int64_t output_zero_point);

/// quantized::add / add_relu of two quint8 tensors into the given output grid.
at::Tensor quantized_add(const at::Tensor& qa, const at::Tensor& qb, bool relu, double output_scale,
                         int64_t output_zero_point);

}  // namespace qimera::deploy
