// ZAQ's discrepancy between the full-precision teacher P and the quantized model Q (baselines.md
// section 4; Liu et al., CVPR 2021, and the public code's "SCRM" module), as pure functions.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace qimera::methods {

/// L_o: mean absolute difference between Q's and P's logits.
at::Tensor zaq_output_discrepancy(const at::Tensor& student_logits, const at::Tensor& teacher_logits);

/// The channel-relation transforms of one feature map x [B, C, H, W], already L2-normalized over
/// channels at every pixel (X = x viewed as [B, C, HW]):
///   spatial: A = softmax_lastdim(X^T X) [B, HW, HW];  X + gamma * X A^T
///   channel: E = X X^T [B, C, C], E' = rowmax(E) - E, A = softmax_lastdim(E');  X + gamma * A X
at::Tensor spatial_relation(const at::Tensor& x, double gamma = 0.1);
at::Tensor channel_relation(const at::Tensor& x, double gamma = 0.1);

/// L_f: over the stages, mean |spatial(P) - spatial(Q)| + mean |channel(P) - channel(Q)| of the
/// L2-normalized (over channels, eps 1e-12) stage outputs.
at::Tensor zaq_feature_discrepancy(const std::vector<at::Tensor>& student_stages,
                                   const std::vector<at::Tensor>& teacher_stages);

/// L_a: mean absolute value of P's last-stage output.
at::Tensor zaq_activation(const std::vector<at::Tensor>& teacher_stages);

}  // namespace qimera::methods
