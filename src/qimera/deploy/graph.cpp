#include "qimera/deploy/graph.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>

namespace qimera::deploy {

// Each case repeats the call the model's module makes (quant/layers.cpp, models/*.cpp), so that the
// result is the same to the bit.
at::Tensor apply_op(const Op& op, const std::vector<at::Tensor>& in) {
  return std::visit(
      Overloaded{
          [&](const ConvOp& c) {
            return at::conv2d(in[0], c.weight, c.bias, {c.spec.stride, c.spec.stride},
                              {c.spec.padding, c.spec.padding}, {c.spec.dilation, c.spec.dilation},
                              c.spec.groups);
          },
          [&](const LinearOp& l) { return at::linear(in[0], l.weight, l.bias); },
          [&](const BatchNormOp& b) {
            return at::batch_norm(in[0], b.weight, b.bias, b.running_mean, b.running_var,
                                  /*training=*/false, b.momentum, b.eps,
                                  at::globalContext().userEnabledCuDNN());
          },
          [&](const ActivationOp& a) {
            return a.kind == quant::ActivationKind::ReLU ? at::relu(in[0])
                                                         : at::hardtanh(in[0], 0.0, 6.0);
          },
          [&](const FakeQuantOp& f) {
            return quant::fake_quantize(in[0], f.params(), f.bits, quant::Ste::Unclipped);
          },
          [&](const AddOp&) { return in[0] + in[1]; },
          [&](const MaxPoolOp& m) { return at::max_pool2d(in[0], m.kernel, m.stride, m.padding); },
          [&](const GlobalAvgPoolOp&) { return at::adaptive_avg_pool2d(in[0], {1, 1}); },
          [&](const FlattenOp&) { return in[0].flatten(1); },
      },
      op);
}

quant::AffineParams FakeQuantOp::params() const { return quant::affine_params(bits, lo, hi); }
float FakeQuantOp::lo_value() const { return lo.item<float>(); }
float FakeQuantOp::hi_value() const { return hi.item<float>(); }

std::string op_name(const Op& op) {
  return std::visit(
      Overloaded{
          [](const ConvOp&) -> std::string { return "conv"; },
          [](const LinearOp&) -> std::string { return "linear"; },
          [](const BatchNormOp&) -> std::string { return "batch_norm"; },
          [](const ActivationOp& a) -> std::string {
            return a.kind == quant::ActivationKind::ReLU ? "relu" : "relu6";
          },
          [](const FakeQuantOp&) -> std::string { return "fake_quant"; },
          [](const AddOp&) -> std::string { return "add"; },
          [](const MaxPoolOp&) -> std::string { return "max_pool"; },
          [](const GlobalAvgPoolOp&) -> std::string { return "global_avg_pool"; },
          [](const FlattenOp&) -> std::string { return "flatten"; },
      },
      op);
}

std::vector<int> InferenceGraph::readers() const {
  std::vector<int> count(static_cast<size_t>(num_values), 0);
  for (const auto& node : nodes) {
    for (int v : node.inputs) ++count.at(static_cast<size_t>(v));
  }
  ++count.at(static_cast<size_t>(output));
  return count;
}

int InferenceGraph::producer(int value) const {
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].output == value) return static_cast<int>(i);
  }
  return -1;
}

InferenceGraph strip_quantization(const InferenceGraph& graph) {
  InferenceGraph out = graph;
  out.nodes.clear();
  std::vector<int> alias(static_cast<size_t>(graph.num_values));
  for (int v = 0; v < graph.num_values; ++v) alias[static_cast<size_t>(v)] = v;
  for (auto node : graph.nodes) {
    for (int& v : node.inputs) v = alias[static_cast<size_t>(v)];
    if (std::holds_alternative<FakeQuantOp>(node.op)) {
      alias[static_cast<size_t>(node.output)] = node.inputs.at(0);
      continue;
    }
    if (auto* conv = std::get_if<ConvOp>(&node.op)) conv->integer = {};
    if (auto* linear = std::get_if<LinearOp>(&node.op)) linear->integer = {};
    out.nodes.push_back(std::move(node));
  }
  out.output = alias[static_cast<size_t>(graph.output)];
  return out;
}

at::Tensor run_reference(const InferenceGraph& graph, const at::Tensor& input,
                         const ValueObserver& observe) {
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> values(static_cast<size_t>(graph.num_values));
  values[0] = input;
  if (observe) observe(0, input);
  for (const auto& node : graph.nodes) {
    std::vector<at::Tensor> in;
    for (int v : node.inputs) {
      require(values.at(static_cast<size_t>(v)).defined(), "inference graph: node {} reads value {} before it is computed",
              node.name, v);
      in.push_back(values[static_cast<size_t>(v)]);
    }
    values.at(static_cast<size_t>(node.output)) = apply_op(node.op, in);
    if (observe) observe(node.output, values[static_cast<size_t>(node.output)]);
  }
  return values.at(static_cast<size_t>(graph.output));
}

}  // namespace qimera::deploy
