#include "qimera/models/conv_block.h"

namespace qimera::models {

ConvBlockImpl::ConvBlockImpl(const ConvBlockSpec& spec) {
  conv_ = register_module(
      "conv", quant::QuantConv2d(quant::Conv2dSpec{spec.in_channels, spec.out_channels,
                                                   spec.kernel_size, spec.stride, spec.padding, 1,
                                                   spec.groups, false}));
  bn_ = register_module("bn", TappedBatchNorm2d(spec.out_channels));
  if (spec.activation) activ_ = register_module("activ", quant::QuantAct(*spec.activation));
}

at::Tensor ConvBlockImpl::forward(const at::Tensor& x) {
  auto y = bn_->forward(conv_->forward(x));
  return activ_ ? activ_->forward(y) : y;
}

ConvBlock conv1x1_block(int64_t in, int64_t out, int64_t stride,
                        std::optional<quant::ActivationKind> act) {
  return ConvBlock(ConvBlockSpec{in, out, 1, stride, 0, 1, act});
}

ConvBlock conv3x3_block(int64_t in, int64_t out, int64_t stride,
                        std::optional<quant::ActivationKind> act) {
  return ConvBlock(ConvBlockSpec{in, out, 3, stride, 1, 1, act});
}

ConvBlock dwconv3x3_block(int64_t channels, int64_t stride, std::optional<quant::ActivationKind> act) {
  return ConvBlock(ConvBlockSpec{channels, channels, 3, stride, 1, channels, act});
}

}  // namespace qimera::models
