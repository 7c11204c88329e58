#include "qimera/deploy/int8_engine.h"

#include "qimera/core/error.h"
#include "qimera/deploy/quantized_ops.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <optional>
#include <set>

namespace qimera::deploy {
namespace {

constexpr int64_t kQuint8Max = 255;

// A quint8 grid: real = (stored - zero_point) * scale, stored in [0, max_stored].
struct Grid {
  double scale = 1;
  int64_t zero_point = 0;
  int64_t max_stored = kQuint8Max;
  double real(int64_t stored) const { return static_cast<double>(stored - zero_point) * scale; }
};

struct Range {
  float lo = 0, hi = 0;
  bool seen = false;
};

// The learned grid of an n-bit activation, if quint8 can hold it exactly (see the header).
std::optional<Grid> learned_grid(const FakeQuantOp& f) {
  const auto params = f.params();
  const float s = params.scale.item<float>();
  const auto zp = static_cast<int64_t>(params.zero_point.item<float>());
  const int64_t offset = int64_t{1} << (f.bits - 1);
  const int64_t zero_point = offset - zp;
  if (zero_point < 0 || zero_point > kQuint8Max) return std::nullopt;
  return Grid{1.0 / static_cast<double>(s), zero_point, (int64_t{1} << f.bits) - 1};
}

// An 8-bit min / max grid containing 0.
Grid calibrated_grid(const Range& r) {
  const double lo = std::min(0.0, static_cast<double>(r.lo)), hi = std::max(0.0, static_cast<double>(r.hi));
  const double scale = std::max(hi - lo, 1e-8) / static_cast<double>(kQuint8Max);
  const auto zero_point = std::clamp<int64_t>(std::llround(-lo / scale), 0, kQuint8Max);
  return {scale, zero_point, kQuint8Max};
}

// Folds an eval-mode batch norm into per-channel factors a and offsets b' (double precision).
struct Folding {
  at::Tensor factor, bias;  // [out] float64
};

Folding fold(const ConvOp& conv, const BatchNormOp* bn) {
  const int64_t out = conv.weight.size(0);
  auto factor = at::ones({out}, at::kDouble);
  auto bias = conv.bias.defined() ? conv.bias.to(at::kDouble) : at::zeros({out}, at::kDouble);
  if (bn) {
    factor = bn->weight.to(at::kDouble) / at::sqrt(bn->running_var.to(at::kDouble) + bn->eps);
    bias = bn->bias.to(at::kDouble) + (bias - bn->running_mean.to(at::kDouble)) * factor;
  }
  return {factor, bias};
}

// Symmetric per-channel int8 weights for the folded convolution (see the header).
struct Int8Weight {
  at::Tensor values;  // int8, the weight's shape
  at::Tensor scales;  // [out] float64
  int64_t exact = 0, requantized = 0;
};

Int8Weight int8_weight(const ConvOp& conv, const at::Tensor& factor) {
  const int64_t out = conv.weight.size(0);
  // The real weight is v * step, per channel.
  const auto v = (conv.integer.q + conv.integer.zero_point.reshape({out, 1, 1, 1})).to(at::kDouble);
  const auto step = 1.0 / conv.integer.scale.to(at::kDouble);
  const auto sign = at::where(factor < 0, -at::ones_like(factor), at::ones_like(factor));
  auto signed_v = v * sign.reshape({out, 1, 1, 1});
  const auto flat = signed_v.reshape({out, -1});
  const auto fits = flat.amin(1).ge(-128).logical_and(flat.amax(1).le(127));
  const auto magnitude = flat.abs().amax(1).clamp_min(1);
  // Channels that fit keep their integers on step |a| / s; the others are squeezed into +-127.
  const auto shrink = at::where(fits, at::ones_like(magnitude), 127.0 / magnitude);
  signed_v = at::round(signed_v * shrink.reshape({out, 1, 1, 1}));
  auto scales = (factor.abs() * step / shrink).clamp_min(1e-30);
  const auto exact = fits.sum().item<int64_t>();
  return {signed_v.to(at::kChar), scales, exact, out - exact};
}

}  // namespace

class Int8Compiler {
 public:
  Int8Compiler(Int8Model& model, const std::vector<at::Tensor>& calibration)
      : m_(model), g_(model.graph_), readers_(g_.readers()) {
    m_.report_.engine = select_quantized_engine();
    calibrate(calibration);
    mark_off_grid();
  }

  void compile() {
    for (size_t i = 0; i < g_.nodes.size();) i = step_at(i);
  }

 private:
  using Values = Int8Model::Values;

  void calibrate(const std::vector<at::Tensor>& batches) {
    require(!batches.empty(), "the int8 engine needs at least one calibration batch");
    ranges_.assign(static_cast<size_t>(g_.num_values), Range{});
    for (const auto& batch : batches) {
      run_reference(g_, batch.cpu(), [&](int v, const at::Tensor& t) {
        auto& r = ranges_[static_cast<size_t>(v)];
        const auto [lo, hi] = at::aminmax(t);
        const float l = lo.item<float>(), h = hi.item<float>();
        r = r.seen ? Range{std::min(r.lo, l), std::max(r.hi, h), true} : Range{l, h, true};
      });
    }
  }

  // Values off any feature-map grid: the normalized image and everything from the pooling on.
  void mark_off_grid() {
    off_grid_.assign(static_cast<size_t>(g_.num_values), false);
    off_grid_[InferenceGraph::kInput] = true;
    for (const auto& n : g_.nodes) {
      bool off = std::holds_alternative<GlobalAvgPoolOp>(n.op);
      for (int v : n.inputs) {
        if (v != InferenceGraph::kInput && off_grid_[static_cast<size_t>(v)]) off = true;
      }
      off_grid_[static_cast<size_t>(n.output)] = off;
    }
  }

  bool reads_off_grid(const Node& n) const {
    for (int v : n.inputs) {
      if (off_grid_[static_cast<size_t>(v)]) return true;
    }
    return false;
  }

  // The grid an integer operation reads or writes `value` on: the learned one after a fake
  // quantizer, else a calibrated one.
  Grid grid_of(int value, const FakeQuantOp* quantizer) {
    if (quantizer) {
      if (auto grid = learned_grid(*quantizer)) return *grid;
    }
    if (calibrated_.insert(value).second) ++m_.report_.calibrated_tensors;
    const auto& r = ranges_.at(static_cast<size_t>(value));
    require(r.seen, "int8 engine: value {} was not seen during calibration", value);
    return calibrated_grid(r);
  }

  // The fake quantizer whose grid `value` lies on: its producer's, or through a max pooling (which
  // selects grid values) the pooled value's.
  const FakeQuantOp* quantizer_of(int value) const {
    const int p = g_.producer(value);
    if (p < 0) return nullptr;
    const auto& node = g_.nodes[static_cast<size_t>(p)];
    if (std::holds_alternative<MaxPoolOp>(node.op)) return quantizer_of(node.inputs.at(0));
    return std::get_if<FakeQuantOp>(&node.op);
  }

  // The chain fused into one integer operation: the head node, then BN / activation / fake
  // quantizer nodes that each read only the previous one's output, which nobody else reads.
  struct Chain {
    size_t end;  // one past the last node
    const BatchNormOp* bn = nullptr;
    const ActivationOp* act = nullptr;
    const FakeQuantOp* quant = nullptr;
    int output;
  };

  Chain chain_from(size_t head) const {
    Chain c{head + 1, nullptr, nullptr, nullptr, g_.nodes[head].output};
    const bool conv = std::holds_alternative<ConvOp>(g_.nodes[head].op);
    for (size_t j = head + 1; j < g_.nodes.size(); ++j) {
      const auto& n = g_.nodes[j];
      if (n.inputs.size() != 1 || n.inputs[0] != c.output || readers_[static_cast<size_t>(c.output)] != 1) break;
      if (auto* bn = std::get_if<BatchNormOp>(&n.op); bn && conv && !c.bn && !c.act && !c.quant) {
        c.bn = bn;
      } else if (auto* act = std::get_if<ActivationOp>(&n.op); act && !c.act && !c.quant) {
        c.act = act;
      } else if (auto* q = std::get_if<FakeQuantOp>(&n.op); q && !c.quant) {
        c.quant = q;
      } else {
        break;
      }
      c.end = j + 1;
      c.output = n.output;
    }
    return c;
  }

  // Reads a value as quint8: as it is when an integer step wrote it, else quantized to its grid.
  std::function<at::Tensor(const Values&)> quint8_reader(int value) {
    if (quantized_.count(value)) return [value](const Values& values) { return values[static_cast<size_t>(value)]; };
    const Grid grid = grid_of(value, quantizer_of(value));
    return [value, grid](const Values& values) {
      const auto& t = values[static_cast<size_t>(value)];
      return at::quantize_per_tensor(t.contiguous(at::MemoryFormat::ChannelsLast), grid.scale,
                                     grid.zero_point, at::kQUInt8);
    };
  }

  // The output grid of a fused chain and the clamp it needs (ReLU6, fewer than 8 bits).
  std::pair<Grid, std::optional<double>> output_grid(const Chain& c) {
    const Grid grid = grid_of(c.output, c.quant);
    std::optional<double> upper;
    if (grid.max_stored < kQuint8Max) upper = grid.real(grid.max_stored);
    if (c.act && c.act->kind == quant::ActivationKind::ReLU6 && grid.real(kQuint8Max) > 6.0) {
      upper = std::min(upper.value_or(6.0), 6.0);
    }
    return {grid, upper};
  }

  size_t step_at(size_t i) {
    const Node& n = g_.nodes[i];
    // Layers an override left in float stay float.
    if (auto* conv = std::get_if<ConvOp>(&n.op); conv && conv->integer.quantized() && !reads_off_grid(n)) {
      return int8_conv(i, *conv);
    }
    if (std::holds_alternative<AddOp>(n.op) && !reads_off_grid(n)) return int8_add(i);
    if (std::holds_alternative<MaxPoolOp>(n.op)) {
      const auto& pool = std::get<MaxPoolOp>(n.op);
      const int in = n.inputs[0], out = n.output;
      if (quantized_.count(in)) quantized_.insert(out);  // pooling keeps the grid
      m_.steps_.push_back({out, [pool, in, out](Values& v) {
        v[static_cast<size_t>(out)] = at::max_pool2d(v[static_cast<size_t>(in)], pool.kernel, pool.stride, pool.padding);
      }});
      return i + 1;
    }
    return float_node(i);
  }

  size_t float_node(size_t i) {
    const Node& n = g_.nodes[i];
    if (std::holds_alternative<ConvOp>(n.op) || std::holds_alternative<LinearOp>(n.op)) ++m_.report_.float_convs;
    const Op op = n.op;  // tensors are shared, not copied
    const auto inputs = n.inputs;
    const int out = n.output;
    m_.steps_.push_back({out, [op, inputs, out](Values& v) {
      std::vector<at::Tensor> in;
      for (int id : inputs) {
        const auto& t = v[static_cast<size_t>(id)];
        in.push_back(t.is_quantized() ? t.dequantize() : t);
      }
      v[static_cast<size_t>(out)] = apply_op(op, in);
    }});
    return i + 1;
  }

  size_t int8_conv(size_t i, const ConvOp& conv) {
    const Chain c = chain_from(i);
    const auto folding = fold(conv, c.bn);
    const auto weight = int8_weight(conv, folding.factor);
    m_.report_.exact_channels += weight.exact;
    m_.report_.requantized_channels += weight.requantized;
    ++m_.report_.int8_convs;
    const auto packed = prepack_conv2d(make_qint8_weight(weight.values, weight.scales),
                                       folding.bias.to(at::kFloat), conv.spec.stride, conv.spec.padding,
                                       conv.spec.dilation, conv.spec.groups);
    auto read = quint8_reader(g_.nodes[i].inputs[0]);
    const auto [grid, upper] = output_grid(c);
    const bool relu = c.act != nullptr;
    const int out = c.output;
    quantized_.insert(out);
    m_.steps_.push_back({out, [read, packed, grid = grid, upper = upper, relu, out](Values& v) {
      auto y = quantized_conv2d(read(v), packed, relu, grid.scale, grid.zero_point);
      if (upper) y = at::clamp(y, c10::nullopt, c10::optional<at::Scalar>(at::Scalar(*upper)));
      v[static_cast<size_t>(out)] = y;
    }});
    return c.end;
  }

  size_t int8_add(size_t i) {
    const Chain c = chain_from(i);
    const Node& n = g_.nodes[i];
    auto read_a = quint8_reader(n.inputs[0]);
    auto read_b = quint8_reader(n.inputs[1]);
    const auto [grid, upper] = output_grid(c);
    const bool relu = c.act != nullptr;
    const int out = c.output;
    quantized_.insert(out);
    ++m_.report_.int8_adds;
    m_.steps_.push_back({out, [read_a, read_b, grid = grid, upper = upper, relu, out](Values& v) {
      auto y = quantized_add(read_a(v), read_b(v), relu, grid.scale, grid.zero_point);
      if (upper) y = at::clamp(y, c10::nullopt, c10::optional<at::Scalar>(at::Scalar(*upper)));
      v[static_cast<size_t>(out)] = y;
    }});
    return c.end;
  }

  Int8Model& m_;
  const InferenceGraph& g_;
  std::vector<int> readers_;
  std::vector<Range> ranges_;
  std::vector<bool> off_grid_;
  std::set<int> calibrated_;
  std::set<int> quantized_;  // values integer steps write (quint8 at run time)
};

nlohmann::json Int8Report::to_json() const {
  return {{"engine", engine},
          {"int8_convs", int8_convs},
          {"float_layers", float_convs},
          {"int8_adds", int8_adds},
          {"exact_weight_channels", exact_channels},
          {"requantized_weight_channels", requantized_channels},
          {"calibrated_tensors", calibrated_tensors}};
}

std::string Int8Report::describe() const {
  return fmt::format(
      "{} engine: {} integer convolutions and {} integer additions, {} float layers; weight "
      "channels: {} exact, {} re-quantized to symmetric int8; {} tensors on calibrated grids",
      engine, int8_convs, int8_adds, float_convs, exact_channels, requantized_channels,
      calibrated_tensors);
}

Int8Model::Int8Model(InferenceGraph graph, const std::vector<at::Tensor>& calibration)
    : graph_(std::move(graph)) {
  at::NoGradGuard no_grad;
  Int8Compiler compiler(*this, calibration);
  compiler.compile();
}

at::Tensor Int8Model::forward(const at::Tensor& input, const ValueObserver& observe) const {
  require(input.device().is_cpu(), "the int8 engine runs on the CPU (got a batch on {})", input.device());
  at::NoGradGuard no_grad;
  Values values(static_cast<size_t>(graph_.num_values));
  values[InferenceGraph::kInput] = input;
  for (const auto& step : steps_) {
    step.run(values);
    if (observe) {
      const auto& t = values[static_cast<size_t>(step.output)];
      observe(step.output, t.is_quantized() ? t.dequantize() : t);
    }
  }
  const auto& out = values[static_cast<size_t>(graph_.output)];
  return out.is_quantized() ? out.dequantize() : out;
}

}  // namespace qimera::deploy
