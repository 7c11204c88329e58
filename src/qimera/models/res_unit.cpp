#include "qimera/models/res_unit.h"

#include "qimera/models/stack.h"

namespace qimera::models {
namespace {

constexpr int64_t kBottleneckFactor = 4;

Stack res_block(const ResUnitSpec& s) {
  Stack body;
  body->add("conv1", conv3x3_block(s.in_channels, s.out_channels, s.stride));
  body->add("conv2", conv3x3_block(s.out_channels, s.out_channels, 1, std::nullopt));
  return body;
}

Stack res_bottleneck(const ResUnitSpec& s) {
  const int64_t mid = s.out_channels / kBottleneckFactor;
  Stack body;
  body->add("conv1", conv1x1_block(s.in_channels, mid, s.conv1_stride ? s.stride : 1));
  body->add("conv2", conv3x3_block(mid, mid, s.conv1_stride ? 1 : s.stride));
  body->add("conv3", conv1x1_block(mid, s.out_channels, 1, std::nullopt));
  return body;
}

}  // namespace

ResUnitImpl::ResUnitImpl(const ResUnitSpec& spec) {
  body_ = register_module("body", spec.bottleneck ? res_bottleneck(spec) : res_block(spec));
  if (spec.in_channels != spec.out_channels || spec.stride != 1) {
    identity_conv_ = register_module(
        "identity_conv", conv1x1_block(spec.in_channels, spec.out_channels, spec.stride, std::nullopt));
  }
  activ_ = register_module("activ", quant::QuantAct(quant::ActivationKind::ReLU));
}

at::Tensor ResUnitImpl::forward(const at::Tensor& x) {
  // pytorchcv computes the identity branch first: this fixes the forward order of batch norms.
  const auto identity = identity_conv_ ? identity_conv_->forward(x) : x;
  return activ_->forward(body_->forward(x) + identity);
}

}  // namespace qimera::models
