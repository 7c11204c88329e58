#include "qimera/quant/layers.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>

#include <cmath>

namespace qimera::quant {
namespace {

// pytorchcv initialises convolutions with kaiming_uniform_ (gain sqrt(2), fan_in) and zero bias;
// used only when training from scratch.
void init_conv(at::Tensor& weight, at::Tensor& bias) {
  torch::nn::init::kaiming_uniform_(weight);
  if (bias.defined()) torch::nn::init::zeros_(bias);
}

// PyTorch's nn.Linear default initialisation.
void init_linear(at::Tensor& weight, at::Tensor& bias) {
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(weight.size(1)));
    torch::nn::init::uniform_(bias, -bound, bound);
  }
}

at::Tensor quantized_weight(const at::Tensor& weight, const WeightQuantizer& q) {
  return q.active() ? fake_quantize_weight(weight, q.bits, q.ste) : weight;
}

}  // namespace

QuantConv2dImpl::QuantConv2dImpl(const Conv2dSpec& spec) : spec_(spec) {
  require(spec.in_channels % spec.groups == 0 && spec.out_channels % spec.groups == 0,
          "convolution with {} -> {} channels cannot have {} groups", spec.in_channels,
          spec.out_channels, spec.groups);
  weight = register_parameter(
      "weight", at::empty({spec.out_channels, spec.in_channels / spec.groups, spec.kernel_size,
                           spec.kernel_size}));
  if (spec.bias) bias = register_parameter("bias", at::empty({spec.out_channels}));
  init_conv(weight, bias);
}

at::Tensor QuantConv2dImpl::effective_weight() const { return quantized_weight(weight, quantizer); }

at::Tensor QuantConv2dImpl::forward(const at::Tensor& x) {
  return at::conv2d(x, effective_weight(), bias, {spec_.stride, spec_.stride},
                    {spec_.padding, spec_.padding}, {spec_.dilation, spec_.dilation}, spec_.groups);
}

QuantLinearImpl::QuantLinearImpl(int64_t in_features, int64_t out_features, bool with_bias) {
  weight = register_parameter("weight", at::empty({out_features, in_features}));
  if (with_bias) bias = register_parameter("bias", at::empty({out_features}));
  init_linear(weight, bias);
}

at::Tensor QuantLinearImpl::effective_weight() const { return quantized_weight(weight, quantizer); }

at::Tensor QuantLinearImpl::forward(const at::Tensor& x) {
  return at::linear(x, effective_weight(), bias);
}

QuantActImpl::QuantActImpl(ActivationKind kind) : kind_(kind) {}

at::Tensor QuantActImpl::forward(const at::Tensor& x) {
  auto y = kind_ == ActivationKind::ReLU ? at::relu(x) : at::hardtanh(x, 0.0, 6.0);
  if (bits_ == 0 || !enabled_) return y;
  if (observing_) observe(observer_, state_, y, bits_);
  const auto [lo, hi] = observed_range(observer_, state_);
  return fake_quantize(y, affine_params(bits_, lo, hi), bits_, ste_);
}

void QuantActImpl::attach_quantizer(int bits, const ObserverOptions& observer, Ste ste,
                                    c10::Device device) {
  check_bits(bits);
  observer.validate();
  bits_ = bits;
  observer_ = observer;
  ste_ = ste;
  observing_ = true;
  enabled_ = true;
  const auto fresh = initial_observer_state(observer);
  if (!state_.lo.defined()) {
    state_.lo = register_buffer("observer_lo", fresh.lo.to(device));
    state_.hi = register_buffer("observer_hi", fresh.hi.to(device));
    state_.aux = register_buffer("observer_aux", fresh.aux.to(device));
    return;
  }
  // Already registered: replace the contents; the buffer entries share these tensors.
  at::NoGradGuard no_grad;
  state_.lo.set_data(fresh.lo.to(device));
  state_.hi.set_data(fresh.hi.to(device));
  state_.aux.set_data(fresh.aux.to(device));
}

std::pair<at::Tensor, at::Tensor> QuantActImpl::range() const {
  require(bits_ > 0, "activation has no quantizer attached");
  return observed_range(observer_, state_);
}

void QuantActImpl::set_range(float lo, float hi) {
  require(bits_ > 0, "activation has no quantizer attached");
  at::NoGradGuard no_grad;
  // Stored so that observed_range() reads back exactly (lo, hi) for every observer kind.
  const bool ema = observer_.kind == ObserverKind::Ema;
  state_.lo.fill_(lo);
  state_.hi.fill_(hi);
  state_.aux.fill_(ema ? 0.0 : 1.0);
  observing_ = false;
}

}  // namespace qimera::quant
