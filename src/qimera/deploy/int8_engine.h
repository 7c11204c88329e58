// Integer inference on the CPU: an inference graph (graph.h) executed with LibTorch's quantized
// operators (quantized_ops.h; the oneDNN engine, which uses AVX-512 VNNI, or AMX where the CPU
// has it). Batch norm is folded into the preceding convolution (W' = W a, b' = beta - mean a,
// a = gamma / sqrt(var + eps)); integer layers are fused conv [+ BN] [+ ReLU] [+ requantization].
//
// How the fake-quantized model's numbers map onto 8-bit containers:
// * Weights. oneDNN takes only symmetric per-channel int8 weights (zero point 0). The reference's
//   weight is (q + zp) / s: the integer v = q + zp on a grid of step 1 / s, and folded with BN,
//   sign(a) v on step |a| / s. That is exact whenever every sign(a) v of a channel lies in
//   [-128, 127], which holds for weights of 7 bits or fewer (|v| <= 127 when the channel's range
//   contains 0). 8-bit weights use 256 levels placed anywhere in [-255, 255]; a channel that does
//   not fit is re-quantized symmetrically, v' = round(v 127 / max|v|) on step |a| max|v| / (127 s):
//   at most half a new step of error per weight (about one reference step). report() counts both.
// * Activations. A quantized activation after ReLU / ReLU6 is (q + zp) / s with q + 2^(n-1) in
//   [0, 2^n - 1]: quint8 with scale 1 / s and zero point 2^(n-1) - zp (0 for a range that starts at
//   0, as after a ReLU). Convolutions and additions write straight into that grid; n < 8 bits and
//   ReLU6 add a clamp. Exact up to the rounding of the integer requantization.
// * Tensors the fake-quantized model keeps in float between integer layers (a residual branch
//   before the addition, MobileNetV2's block outputs) get 8-bit grids from min / max ranges
//   calibrated on batches the caller provides.
// * The first layer (it reads the normalized image, which the model does not quantize) and the
//   classifier (it reads the pooled features and writes the logits) run in float over the
//   dequantized integer weights, as in the fake-quantized model; they are a small share of the work.
#pragma once

#include "qimera/deploy/graph.h"

#include <nlohmann/json_fwd.hpp>

#include <functional>
#include <string>
#include <vector>

namespace qimera::deploy {

struct Int8Report {
  std::string engine;           // "onednn", ...
  int int8_convs = 0;           // convolutions on integers
  int float_convs = 0;          // convolutions / linear layers in float (first layer, classifier, float overrides)
  int int8_adds = 0;            // residual additions on integers
  int64_t exact_channels = 0;   // weight channels whose integers map exactly onto symmetric int8
  int64_t requantized_channels = 0;
  int calibrated_tensors = 0;   // tensors with a calibrated (not learned) 8-bit grid
  nlohmann::json to_json() const;
  std::string describe() const;  // one line for people
};

class Int8Model {
 public:
  /// Converts the graph (CPU only). `calibration` holds normalized input batches (at least one)
  /// for the tensors without a learned grid.
  Int8Model(InferenceGraph graph, const std::vector<at::Tensor>& calibration);

  /// Logits (float32) of a normalized batch [N, C, S, S] on the CPU. `observe` sees every value
  /// the engine materializes (dequantized), by value id.
  at::Tensor forward(const at::Tensor& input, const ValueObserver& observe = {}) const;

  const Int8Report& report() const { return report_; }
  const InferenceGraph& graph() const { return graph_; }

 private:
  using Values = std::vector<at::Tensor>;
  InferenceGraph graph_;
  struct Step {
    int output;  // the value it writes
    std::function<void(Values&)> run;
  };
  std::vector<Step> steps_;
  Int8Report report_;
  friend class Int8Compiler;
};

}  // namespace qimera::deploy
