#include "qimera/generator/conditional_batch_norm.h"

#include <ATen/ATen.h>
#include <c10/util/StringUtil.h>
#include <torch/nn/functional/batchnorm.h>
#include <torch/nn/init.h>

#include "qimera/core/error.h"

namespace qimera::generator {

CategoricalConditionalBatchNorm2dImpl::CategoricalConditionalBatchNorm2dImpl(
    CategoricalConditionalBatchNorm2dOptions options)
    : options_(options) {
  require(options_.num_classes >= 1 && options_.num_features >= 1,
          "conditional batch norm needs num_classes >= 1 and num_features >= 1, got {} and {}",
          options_.num_classes, options_.num_features);
  require(options_.eps > 0.0, "conditional batch norm eps must be positive, got {}", options_.eps);
  weights =
      register_module("weights", torch::nn::Embedding(options_.num_classes, options_.num_features));
  biases =
      register_module("biases", torch::nn::Embedding(options_.num_classes, options_.num_features));
  torch::nn::init::ones_(weights->weight);
  torch::nn::init::zeros_(biases->weight);
  running_mean = register_buffer("running_mean", at::zeros({options_.num_features}));
  running_var = register_buffer("running_var", at::ones({options_.num_features}));
  num_batches_tracked = register_buffer("num_batches_tracked", at::zeros({}, at::kLong));
}

std::pair<at::Tensor, at::Tensor> CategoricalConditionalBatchNorm2dImpl::scale_and_shift(
    const at::Tensor& labels, const at::Tensor& mix) {
  if (labels.dim() == 1) {
    require(!mix.defined(), "conditional batch norm: ordinary labels [B] take no mix weights");
    return {weights->forward(labels), biases->forward(labels)};
  }
  require(labels.dim() == 2 && mix.defined() && mix.sizes() == labels.sizes(),
          "conditional batch norm: superposed labels [B, K] need mix weights of the same shape, "
          "got labels {} and mix {}",
          c10::str(labels.sizes()), mix.defined() ? c10::str(mix.sizes()) : "none");
  const auto lambda = mix.unsqueeze(2);
  // The reference averages the lambda-weighted rows over k (mean, not sum): see the header.
  return {(weights->forward(labels) * lambda).mean(1), (biases->forward(labels) * lambda).mean(1)};
}

at::Tensor CategoricalConditionalBatchNorm2dImpl::forward(const at::Tensor& x,
                                                          const at::Tensor& labels,
                                                          const at::Tensor& mix) {
  require(x.dim() == 4 && x.size(1) == options_.num_features,
          "conditional batch norm expects input [B, {}, H, W], got {}", options_.num_features,
          c10::str(x.sizes()));
  require(labels.dim() >= 1 && labels.size(0) == x.size(0),
          "conditional batch norm: {} labels for a batch of {}",
          labels.dim() >= 1 ? labels.size(0) : 0, x.size(0));
  if (is_training()) num_batches_tracked += 1;
  namespace F = torch::nn::functional;
  const auto normalized = F::batch_norm(x, running_mean, running_var,
                                        F::BatchNormFuncOptions()
                                            .training(is_training())
                                            .momentum(options_.momentum)
                                            .eps(options_.eps));
  auto [gamma, beta] = scale_and_shift(labels, mix);
  const int64_t batch = x.size(0);
  return gamma.view({batch, options_.num_features, 1, 1}) * normalized +
         beta.view({batch, options_.num_features, 1, 1});
}

}  // namespace qimera::generator
