// Quantizable layers. The model zoo builds its networks from these, so that a full-precision model and
// its fake-quantized copy are the same code: conversion (convert.h) only switches quantizers on.
//   QuantConv2d / QuantLinear: a float layer whose weight goes through a per-output-channel fake
//     quantizer (range recomputed from the current weights at every forward) when one is attached.
//   QuantAct: ReLU or ReLU6, followed by a per-tensor activation fake quantizer with a range observer
//     when one is attached (the reference places the quantizer after the activation).
// Parameter names are PyTorch's ("weight", "bias"), so pytorchcv state dicts load unchanged.
#pragma once

#include "qimera/quant/fake_quantize.h"
#include "qimera/quant/observer.h"

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <optional>
#include <vector>

namespace qimera::quant {

/// Weight fake quantization settings of one layer.
struct WeightQuantizer {
  int bits = 0;  // 0: not quantized
  Ste ste = Ste::Unclipped;
  bool enabled = true;
  bool active() const { return bits > 0 && enabled; }
};

struct Conv2dSpec {
  int64_t in_channels, out_channels, kernel_size;
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = false;
};

class QuantConv2dImpl : public torch::nn::Module {
 public:
  explicit QuantConv2dImpl(const Conv2dSpec& spec);
  at::Tensor forward(const at::Tensor& x);
  /// The weight the convolution uses: fake-quantized when the quantizer is active.
  at::Tensor effective_weight() const;
  const Conv2dSpec& spec() const { return spec_; }
  WeightQuantizer quantizer;
  at::Tensor weight, bias;

 private:
  Conv2dSpec spec_;
};
TORCH_MODULE(QuantConv2d);

class QuantLinearImpl : public torch::nn::Module {
 public:
  QuantLinearImpl(int64_t in_features, int64_t out_features, bool bias = true);
  at::Tensor forward(const at::Tensor& x);
  at::Tensor effective_weight() const;
  WeightQuantizer quantizer;
  at::Tensor weight, bias;
};
TORCH_MODULE(QuantLinear);

enum class ActivationKind { ReLU, ReLU6 };

class QuantActImpl : public torch::nn::Module {
 public:
  explicit QuantActImpl(ActivationKind kind);
  at::Tensor forward(const at::Tensor& x);

  /// Attaches an n-bit activation quantizer with a fresh observer whose state lives in the buffers
  /// observer_lo / observer_hi / observer_aux on `device`. Observing starts switched on. Attaching
  /// again resets the observer. (There is no detach: LibTorch cannot unregister buffers; switch a
  /// quantizer off with set_enabled(false).)
  void attach_quantizer(int bits, const ObserverOptions& observer, Ste ste, c10::Device device);
  bool has_quantizer() const { return bits_ > 0; }
  int bits() const { return bits_; }
  const ObserverOptions& observer() const { return observer_; }
  Ste ste() const { return ste_; }

  /// While observing ("unfixed"), every forward folds its input's range into the observer; when not
  /// ("fixed"), the range is frozen.
  void set_observing(bool observing) { observing_ = observing; }
  bool observing() const { return observing_; }
  /// Quantizer on/off switch: off gives the float activation (the range is kept).
  void set_enabled(bool enabled) { enabled_ = enabled; }
  bool enabled() const { return enabled_; }

  /// The current range [lo, hi] (shape [1] each).
  std::pair<at::Tensor, at::Tensor> range() const;
  /// Sets the range directly (used when loading an exported model); fixes the quantizer.
  void set_range(float lo, float hi);

  ActivationKind kind() const { return kind_; }

 private:
  ActivationKind kind_;
  int bits_ = 0;
  ObserverOptions observer_;
  ObserverState state_;
  Ste ste_ = Ste::Unclipped;
  bool observing_ = true;
  bool enabled_ = true;
};
TORCH_MODULE(QuantAct);

}  // namespace qimera::quant
