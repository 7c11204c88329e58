// pytorchcv's ConvBlock: convolution (no bias) -> batch norm -> optional ReLU / ReLU6, with the
// submodule names "conv", "bn", "activ" that pytorchcv's state dicts use.
#pragma once

#include "qimera/models/batch_norm.h"
#include "qimera/quant/layers.h"

#include <optional>

namespace qimera::models {

struct ConvBlockSpec {
  int64_t in_channels, out_channels, kernel_size;
  int64_t stride = 1, padding = 0, groups = 1;
  std::optional<quant::ActivationKind> activation = quant::ActivationKind::ReLU;
};

class ConvBlockImpl : public torch::nn::Module {
 public:
  explicit ConvBlockImpl(const ConvBlockSpec& spec);
  at::Tensor forward(const at::Tensor& x);

 private:
  quant::QuantConv2d conv_{nullptr};
  TappedBatchNorm2d bn_{nullptr};
  quant::QuantAct activ_{nullptr};
};
TORCH_MODULE(ConvBlock);

/// 1x1, 3x3 (padding 1) and 3x3 depthwise blocks, as pytorchcv names them.
ConvBlock conv1x1_block(int64_t in, int64_t out, int64_t stride = 1,
                        std::optional<quant::ActivationKind> act = quant::ActivationKind::ReLU);
ConvBlock conv3x3_block(int64_t in, int64_t out, int64_t stride = 1,
                        std::optional<quant::ActivationKind> act = quant::ActivationKind::ReLU);
ConvBlock dwconv3x3_block(int64_t channels, int64_t stride,
                          std::optional<quant::ActivationKind> act = quant::ActivationKind::ReLU);

}  // namespace qimera::models
