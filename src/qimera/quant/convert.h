// The conversion pass P -> Q: switches on a fake quantizer in every quantizable layer of a model
// built from quant/layers.h. Every convolution and linear layer gets a per-channel weight quantizer,
// every ReLU / ReLU6 output an activation quantizer; batch norm stays float; the input is not
// quantized. Per-layer overrides by name pattern change the bits or leave a layer in float.
#pragma once

#include "qimera/quant/fake_quantize.h"
#include "qimera/quant/layers.h"
#include "qimera/quant/observer.h"

#include <nlohmann/json_fwd.hpp>
#include <torch/nn/module.h>

#include <optional>
#include <string>
#include <vector>

namespace qimera::quant {

/// One override: layers whose module name matches `pattern` (shell glob, e.g. "features.stage1.*",
/// or the aliases "@first" / "@last" for the first and last weight layer) get these bits; 0 bits
/// means "leave in float". Unset fields keep the default.
struct LayerOverride {
  std::string pattern;
  std::optional<int> weight_bits;
  std::optional<int> act_bits;
};

/// Parses "PATTERN=W" (weights and activations), "PATTERN=WxA" or "PATTERN=float" ("4x8", "8", ...).
LayerOverride parse_layer_override(const std::string& text);

struct QuantConfig {
  int weight_bits = 4;
  int act_bits = 4;
  Ste ste = Ste::Unclipped;
  ObserverOptions observer;
  std::vector<LayerOverride> overrides;  // applied in order; the last match wins
  void validate() const;
  std::string short_name() const;  // "4w4a"
  nlohmann::json to_json() const;
  static QuantConfig from_json(const nlohmann::json& j);
};

/// A quantizable layer of a model, found by name: exactly one of the pointers is set.
struct QuantizableLayer {
  std::string name;
  std::shared_ptr<QuantConv2dImpl> conv;
  std::shared_ptr<QuantLinearImpl> linear;
  std::shared_ptr<QuantActImpl> act;
  /// The weight quantizer of a conv / linear layer, else nullptr.
  WeightQuantizer* weight_quantizer() const;
  /// The weight parameter of a conv / linear layer.
  at::Tensor weight() const;
  std::string kind() const;  // "conv", "linear", "act"
};

/// Every quantizable layer in module order.
std::vector<QuantizableLayer> quantizable_layers(const torch::nn::Module& model);

/// Whether a layer name matches a shell glob ("features.stage1.*"); the one rule every
/// layer-selecting flag uses, so that a pattern means the same everywhere.
bool layer_name_matches(const std::string& glob, const std::string& layer_name);

/// What the pass did to one layer.
struct LayerQuantization {
  std::string name;
  std::string kind;  // "conv", "linear", "act"
  int bits = 0;      // 0: left in float
};

/// Switches quantizers on in place. Returns every quantizable layer with its setting, in module order.
/// Errors if an override pattern matches no layer (a typo would otherwise silently do nothing).
std::vector<LayerQuantization> convert(torch::nn::Module& model, const QuantConfig& config);

/// The current quantization of every quantizable layer (for manifests and reports).
std::vector<LayerQuantization> describe_quantization(const torch::nn::Module& model);

/// Gives `to` (same architecture as `from`) the same quantizer settings, observer kinds and
/// fixed/unfixed states as `from`; observer values are not copied (copy the buffers for that).
void copy_quantization(const torch::nn::Module& from, torch::nn::Module& to);

/// Fixes (false) or unfixes (true) every activation range of the model.
void set_observing(torch::nn::Module& model, bool observing);

/// Switches every weight and activation quantizer on or off; off gives the float model exactly.
void set_quantization_enabled(torch::nn::Module& model, bool enabled);

}  // namespace qimera::quant
