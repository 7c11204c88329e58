// ResNets as pytorchcv builds them: the CIFAR ResNet-20 (3 stages of 3 basic units, 16/32/64
// channels, configurable input channels/size/classes) and the ImageNet ResNet-18 / ResNet-50.
#pragma once

#include "qimera/models/classifier.h"
#include "qimera/models/conv_block.h"

#include "qimera/models/stack.h"

namespace qimera::models {

class ResNetImpl : public ClassifierImpl {
 public:
  explicit ResNetImpl(const ModelSpec& spec);
  at::Tensor features(const at::Tensor& x) override;
  at::Tensor classify(const at::Tensor& features) override;
  at::Tensor classifier_weight() const override;

 private:
  Stack features_{nullptr};
  quant::QuantLinear output_{nullptr};
};

}  // namespace qimera::models
