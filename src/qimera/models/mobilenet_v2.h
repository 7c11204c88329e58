// MobileNetV2 (width 1.0) as pytorchcv builds it (mobilenetv2_w1): stages of linear bottlenecks,
// ReLU6 activations, a 1x1 final block to 1280 channels and a 1x1 convolution as classifier.
#pragma once

#include "qimera/models/classifier.h"
#include "qimera/models/conv_block.h"

#include "qimera/models/stack.h"

namespace qimera::models {

class MobileNetV2Impl : public ClassifierImpl {
 public:
  explicit MobileNetV2Impl(const ModelSpec& spec);
  at::Tensor features(const at::Tensor& x) override;
  at::Tensor classify(const at::Tensor& features) override;
  at::Tensor classifier_weight() const override;

 private:
  Stack features_{nullptr};
  quant::QuantConv2d output_{nullptr};
};

}  // namespace qimera::models
