// BatchNorm2d whose input can be observed: the BNS loss needs, with gradients, the input of every
// batch-norm layer of the teacher in forward order. LibTorch has no forward hooks, so the layer
// itself appends its input to a sink while one is attached. State names and semantics are PyTorch's
// BatchNorm2d (weight, bias, running_mean, running_var, num_batches_tracked; momentum 0.1).
// (Not derived from torch::nn::BatchNorm2dImpl: Debian's LibTorch 1.13 does not export all of that
// template's virtual members, so a subclass does not link.)
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <vector>

namespace qimera::models {

class TappedBatchNorm2dImpl;

/// One batch-norm layer's input during a traced forward pass.
struct BnObservation {
  at::Tensor input;  // [N, C, H, W], part of the autograd graph
  const TappedBatchNorm2dImpl* layer;
};

class TappedBatchNorm2dImpl : public torch::nn::Module {
 public:
  explicit TappedBatchNorm2dImpl(int64_t channels, double eps = 1e-5, double momentum = 0.1);
  at::Tensor forward(const at::Tensor& x);
  /// While `sink` is set, every forward appends its input there.
  void set_sink(std::vector<BnObservation>* sink) { sink_ = sink; }
  void pretty_print(std::ostream& stream) const override;

  at::Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  double eps, momentum;

 private:
  std::vector<BnObservation>* sink_ = nullptr;
};
TORCH_MODULE(TappedBatchNorm2d);

}  // namespace qimera::models
