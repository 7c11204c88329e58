// The inference graph: a quantized (or float) zoo model flattened into a list of operations in
// execution order, with every quantization parameter explicit. It is what the deployment back ends
// consume (ONNX export, the int8 engine), so that neither has to know the model zoo's module tree.
//
// Values are numbered; value 0 is the normalized input image [N, C, S, S]. Each node reads earlier
// values and writes one new value. A quantized weight is kept as the reference's grid integers with
// its per-output-channel scale and zero point (real = (q + zero_point) / scale, method.md section 1);
// a quantized activation is a FakeQuant node after its ReLU / ReLU6 carrying the learned range.
// run_reference() executes the graph with the same ATen operations as the fake-quantized model, so
// its logits equal the model's bit for bit (tested for every architecture).
#pragma once

#include "qimera/data/preprocess.h"
#include "qimera/models/model_spec.h"
#include "qimera/quant/convert.h"
#include "qimera/quant/fake_quantize.h"
#include "qimera/quant/layers.h"

#include <ATen/core/Tensor.h>

#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace qimera::deploy {

/// A weight on the reference's per-output-channel grid; bits == 0 means "left in float".
struct IntegerWeight {
  int bits = 0;
  at::Tensor q;           // float32 integers in [qmin(bits), qmax(bits)], the weight's shape
  at::Tensor scale;       // [out] float32: grid steps per unit (the reference's scale)
  at::Tensor zero_point;  // [out] float32 integers
  bool quantized() const { return bits > 0; }
};

struct ConvOp {
  quant::Conv2dSpec spec;
  at::Tensor weight;  // float32 as the model computes with it (dequantized when quantized)
  at::Tensor bias;    // may be undefined
  IntegerWeight integer;
};

struct LinearOp {
  at::Tensor weight, bias;  // bias may be undefined
  IntegerWeight integer;
};

/// Batch norm in eval mode (running statistics).
struct BatchNormOp {
  at::Tensor weight, bias, running_mean, running_var;
  double eps = 1e-5;
  double momentum = 0.1;  // unused in eval mode; at::batch_norm takes it
};

struct ActivationOp {
  quant::ActivationKind kind = quant::ActivationKind::ReLU;
};

/// Per-tensor fake quantization with a fixed range: q = clamp(round(scale * x - zp)), x_hat = (q + zp) / scale.
struct FakeQuantOp {
  int bits = 0;
  at::Tensor lo, hi;  // [1] float32, exactly as the model's quantizer reads its range
  quant::AffineParams params() const;
  float lo_value() const;
  float hi_value() const;
};

struct AddOp {};
struct MaxPoolOp {
  int64_t kernel = 3, stride = 2, padding = 1;
};
/// Mean over the spatial dimensions, kept as [N, C, 1, 1].
struct GlobalAvgPoolOp {};
/// [N, C, 1, 1] -> [N, C].
struct FlattenOp {};

using Op = std::variant<ConvOp, LinearOp, BatchNormOp, ActivationOp, FakeQuantOp, AddOp, MaxPoolOp,
                        GlobalAvgPoolOp, FlattenOp>;

struct Node {
  std::string name;         // the module it came from, e.g. "features.stage1.unit1.body.conv1.conv"
  Op op;
  std::vector<int> inputs;  // value ids
  int output = -1;          // value id
};

/// Visitor helper: std::visit(Overloaded{[](const ConvOp&) {...}, ...}, op).
template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

/// "conv", "linear", "batch_norm", "relu", "relu6", "fake_quant", "add", "max_pool", "global_avg_pool", "flatten".
std::string op_name(const Op& op);

struct InferenceGraph {
  models::ModelSpec spec;
  data::Preprocess preprocess;
  std::vector<Node> nodes;  // execution order
  int num_values = 1;       // value 0 is the input
  int output = 0;           // the logits' value id

  static constexpr int kInput = 0;
  /// How many nodes read each value (the graph output counts as one reader).
  std::vector<int> readers() const;
  /// Index of the node that writes `value` (-1 for the input).
  int producer(int value) const;
};

/// The same graph in float: integer weights dropped (the dequantized weights stay), fake quantizers
/// removed. The float32 counterpart for size comparisons.
InferenceGraph strip_quantization(const InferenceGraph& graph);

/// One node's operation on its (float) inputs, with the fake-quantized model's ATen calls.
at::Tensor apply_op(const Op& op, const std::vector<at::Tensor>& inputs);

/// Called with every value as it is computed (value id, tensor).
using ValueObserver = std::function<void(int, const at::Tensor&)>;

/// Runs the graph on a normalized batch with the fake-quantized model's own ATen operations.
at::Tensor run_reference(const InferenceGraph& graph, const at::Tensor& input,
                         const ValueObserver& observe = {});

}  // namespace qimera::deploy
