// The training losses of GDFQ and Qimera (method.md section 5).
#pragma once

#include "qimera/models/batch_norm.h"

#include <ATen/core/Tensor.h>

#include <vector>

namespace qimera::methods {

/// Cross-entropy against soft targets: mean over the batch of -sum_c t_c * log_softmax(logits)_c.
at::Tensor soft_cross_entropy(const at::Tensor& logits, const at::Tensor& targets);

/// Batch-norm statistics loss: the mean over layers of MSE(mean of the input over N,H,W, running
/// mean) + MSE(biased variance of the input, running variance); MSE averages over channels.
at::Tensor bns_loss(const std::vector<models::BnObservation>& observations);

/// Knowledge distillation as the reference computes it: KL(softmax(teacher/T) || softmax(student/T))
/// averaged over every element (PyTorch KLDivLoss 'mean': divided by B*C, not B), times alpha * T^2.
at::Tensor kd_loss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                   double temperature, double alpha);

/// Share of rows whose arg-max agrees between logits and (soft) targets, as a 0-dim tensor (no sync).
at::Tensor agreement(const at::Tensor& logits, const at::Tensor& targets);

}  // namespace qimera::methods
