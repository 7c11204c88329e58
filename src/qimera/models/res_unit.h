// pytorchcv's residual unit: body (two 3x3 blocks, or a 1x1-3x3-1x1 bottleneck), an identity
// projection when the shape changes, addition, then ReLU. Shared by the CIFAR and ImageNet ResNets.
#pragma once

#include "qimera/models/conv_block.h"
#include "qimera/models/stack.h"

namespace qimera::models {

struct ResUnitSpec {
  int64_t in_channels, out_channels, stride;
  bool bottleneck = false;
  bool conv1_stride = true;  // bottleneck: stride in the first 1x1 conv (pytorchcv resnet50) or the 3x3
};

class ResUnitImpl : public torch::nn::Module {
 public:
  explicit ResUnitImpl(const ResUnitSpec& spec);
  at::Tensor forward(const at::Tensor& x);

 private:
  Stack body_{nullptr};
  ConvBlock identity_conv_{nullptr};
  quant::QuantAct activ_{nullptr};
};
TORCH_MODULE(ResUnit);

}  // namespace qimera::models
