// Categorical conditional batch norm: a batch norm without affine parameters followed by a
// per-class scale and shift looked up from two tables (the ImageNet-size generator's normalization
// layers).
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <utility>

namespace qimera::generator {

/// Example: CategoricalConditionalBatchNorm2dOptions o(1000, 128); o.eps = 0.8;
struct CategoricalConditionalBatchNorm2dOptions {
  CategoricalConditionalBatchNorm2dOptions(int64_t num_classes, int64_t num_features)
      : num_classes(num_classes), num_features(num_features) {}
  int64_t num_classes;
  int64_t num_features;
  double eps = 1e-5;
  // For the running statistics: kept and updated as in the reference, but training never reads them.
  double momentum = 0.1;
};

/// Normalizes x [B, F, H, W] per channel with batch statistics (running statistics in eval mode),
/// then applies gamma * x + beta with gamma, beta [B, F] taken from the tables `weights` (init 1)
/// and `biases` (init 0), each num_classes x F:
///   ordinary labels [B]:            gamma = weights[y]
///   superposed labels [B, K], mix:  gamma = mean_k (mix_k * weights[y_k])   (same for beta)
/// The superposed rule is the reference implementation's: a *mean* over k of the lambda-weighted
/// rows, not their sum, so the scale and shift shrink by 1/K compared with an ordinary sample of
/// the same class (a one-hot mix gives weights[y_1] / K). Reproduced as is.
/// Parameter and buffer names match the reference's state dict (weights.weight, biases.weight,
/// running_mean, running_var, num_batches_tracked).
class CategoricalConditionalBatchNorm2dImpl : public torch::nn::Module {
 public:
  explicit CategoricalConditionalBatchNorm2dImpl(CategoricalConditionalBatchNorm2dOptions options);

  /// Example: y = cbn(x, labels);  y = cbn(x, labels_bk, mix_bk);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& labels, const at::Tensor& mix = {});

  /// The per-sample scale and shift [B, F] for `labels` (and `mix` when superposed).
  std::pair<at::Tensor, at::Tensor> scale_and_shift(const at::Tensor& labels,
                                                    const at::Tensor& mix = {});

  const CategoricalConditionalBatchNorm2dOptions& options() const { return options_; }

  torch::nn::Embedding weights{nullptr};
  torch::nn::Embedding biases{nullptr};
  at::Tensor running_mean;
  at::Tensor running_var;
  at::Tensor num_batches_tracked;

 private:
  CategoricalConditionalBatchNorm2dOptions options_;
};
TORCH_MODULE(CategoricalConditionalBatchNorm2d);

}  // namespace qimera::generator
