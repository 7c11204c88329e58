#include "qimera/deploy/onnx_export.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"

#include <ATen/ATen.h>

#include <algorithm>

#if QIMERA_HAVE_ONNX
#include <onnx/onnx_pb.h>
#endif

namespace qimera::deploy {
namespace fs = std::filesystem;

#if QIMERA_HAVE_ONNX
namespace {

constexpr int64_t kOpset = 21;     // INT4 / UINT4 in QuantizeLinear and DequantizeLinear
constexpr int64_t kIrVersion = 10;  // the IR version that introduced INT4
constexpr const char* kOnnxFormat = "qimera-onnx/1";

// TensorProto.DataType numbers. INT4 is newer than libonnx-dev 1.12's enum, but data_type is an
// int32 field and takes it.
enum class Container { Int4, Int8, Int16 };
constexpr int kOnnxInt8 = 3;
constexpr int kOnnxInt16 = 5;
constexpr int kOnnxInt4 = 22;

int onnx_type(Container c) {
  switch (c) {
    case Container::Int4: return kOnnxInt4;
    case Container::Int8: return kOnnxInt8;
    case Container::Int16: return kOnnxInt16;
  }
  return 0;
}

int container_bits(Container c) { return c == Container::Int4 ? 4 : c == Container::Int8 ? 8 : 16; }

std::string container_name(Container c) { return fmt::format("int{}", container_bits(c)); }

bool fits(const at::Tensor& values, Container c) {
  const int64_t lo = -(int64_t{1} << (container_bits(c) - 1)), hi = -lo - 1;
  return values.numel() == 0 ||
         (values.min().item<double>() >= static_cast<double>(lo) && values.max().item<double>() <= static_cast<double>(hi));
}

// The smallest container for n-bit grid values whose ONNX zero points (-zp) are `zero_points`. The
// grid values themselves always fit (n <= 8).
Container container_for(int bits, const at::Tensor& zero_points, const OnnxOptions& options,
                        const std::string& what) {
  Container c = bits <= 4 && !options.int8_containers ? Container::Int4 : Container::Int8;
  while (!fits(zero_points, c)) {
    require(c != Container::Int16, "{}: zero point {} does not fit even an int16 container", what,
            zero_points.abs().max().item<double>());
    c = c == Container::Int4 ? Container::Int8 : Container::Int16;
  }
  return c;
}

// Integers (any dtype holding whole numbers) as raw little-endian container data; INT4 packs two
// values per byte, the first in the low nibble.
std::string raw_integers(const at::Tensor& values, Container c) {
  const auto v = values.reshape({-1}).to(at::kLong).contiguous();
  const int64_t* p = v.data_ptr<int64_t>();
  const int64_t n = v.numel();
  std::string raw;
  switch (c) {
    case Container::Int4:
      raw.resize(static_cast<size_t>((n + 1) / 2), '\0');
      for (int64_t i = 0; i < n; ++i) {
        const auto nibble = static_cast<uint8_t>(p[i] & 0xF);
        raw[static_cast<size_t>(i / 2)] = static_cast<char>(
            static_cast<uint8_t>(raw[static_cast<size_t>(i / 2)]) | (i % 2 == 0 ? nibble : nibble << 4));
      }
      break;
    case Container::Int8:
      for (int64_t i = 0; i < n; ++i) raw.push_back(static_cast<char>(static_cast<int8_t>(p[i])));
      break;
    case Container::Int16:
      for (int64_t i = 0; i < n; ++i) {
        const auto u = static_cast<uint16_t>(static_cast<int16_t>(p[i]));
        raw.push_back(static_cast<char>(u & 0xFF));
        raw.push_back(static_cast<char>(u >> 8));
      }
      break;
  }
  return raw;
}

// Max pooling commutes with a fake quantizer (it is monotone, so the largest value quantizes to
// the largest grid point): FakeQuant -> MaxPool becomes MaxPool -> FakeQuant, exactly the same
// values. No runtime then has to pool INT4 values: ONNX Runtime's QDQ propagation would move the
// DequantizeLinear after the MaxPool, which has no INT4 kernel (the session fails to load).
std::vector<Node> pooled_before_quantizing(std::vector<Node> nodes) {
  for (size_t i = 0; i + 1 < nodes.size(); ++i) {
    auto& quantize = nodes[i];
    auto& pool = nodes[i + 1];
    if (!std::holds_alternative<FakeQuantOp>(quantize.op) || !std::holds_alternative<MaxPoolOp>(pool.op) ||
        pool.inputs.at(0) != quantize.output) {
      continue;
    }
    int used = 0;
    for (const auto& n : nodes) used += static_cast<int>(std::count(n.inputs.begin(), n.inputs.end(), quantize.output));
    if (used != 1) continue;
    // x -> q -> p  becomes  x -> p' -> q', with the pool's output id now the quantizer's.
    std::swap(quantize.op, pool.op);
    std::swap(quantize.name, pool.name);
    ++i;
  }
  return nodes;
}

class OnnxBuilder {
 public:
  OnnxBuilder(const InferenceGraph& graph, const OnnxOptions& options)
      : graph_(graph), options_(options), g_(model_.mutable_graph()) {}

  onnx::ModelProto build(const nlohmann::json& metadata, OnnxExportSummary& summary) {
    model_.set_ir_version(kIrVersion);
    model_.set_producer_name("qimera");
    model_.set_producer_version(QIMERA_VERSION);
    auto* opset = model_.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOpset);
    g_->set_name(fmt::format("qimera {}", graph_.spec.describe()));
    g_->set_doc_string(
        "QDQ model exported by qimera: integer weights with per-output-channel DequantizeLinear, "
        "per-tensor QuantizeLinear/DequantizeLinear after every quantized activation, batch norm "
        "kept in float, input normalization in the graph (input: uint8 pixels).");
    names_.assign(static_cast<size_t>(graph_.num_values), "");
    const auto nodes = pooled_before_quantizing(graph_.nodes);
    feeds_quantizer_.assign(static_cast<size_t>(graph_.num_values), false);
    pooled_.assign(static_cast<size_t>(graph_.num_values), false);
    for (const auto& node : nodes) {
      if (std::holds_alternative<FakeQuantOp>(node.op)) feeds_quantizer_.at(static_cast<size_t>(node.inputs.at(0))) = true;
      if (std::holds_alternative<MaxPoolOp>(node.op)) pooled_.at(static_cast<size_t>(node.output)) = true;
    }
    input();
    for (const auto& node : nodes) lower(node);
    output();
    add_metadata(metadata);
    summary.tensors = tensors_;
    summary.nodes = g_->node_size();
    return model_;
  }

 private:
  // --- values, initializers, nodes ---------------------------------------------------------------
  std::string fresh(const std::string& base) {
    const int n = used_[base]++;
    return n == 0 ? base : fmt::format("{}_{}", base, n);
  }

  void float_initializer(const std::string& name, const at::Tensor& t, bool scalar = false) {
    auto* init = g_->add_initializer();
    init->set_name(name);
    init->set_data_type(onnx::TensorProto::FLOAT);
    const auto v = t.detach().cpu().to(at::kFloat).contiguous();
    if (!scalar) {
      for (int64_t d : v.sizes()) init->add_dims(d);
    }
    init->set_raw_data(std::string(reinterpret_cast<const char*>(v.data_ptr<float>()),
                                   static_cast<size_t>(v.numel()) * sizeof(float)));
  }

  void integer_initializer(const std::string& name, const at::Tensor& values, Container c,
                           bool scalar = false) {
    auto* init = g_->add_initializer();
    init->set_name(name);
    init->set_data_type(onnx_type(c));
    if (!scalar) {
      for (int64_t d : values.sizes()) init->add_dims(d);
    }
    init->set_raw_data(raw_integers(values, c));
  }

  onnx::NodeProto* node(const std::string& op_type, const std::string& name,
                        std::vector<std::string> inputs, const std::string& output) {
    auto* n = g_->add_node();
    n->set_op_type(op_type);
    n->set_name(fresh(name.empty() ? op_type : name + "/" + op_type));
    for (auto& i : inputs) n->add_input(i);
    n->add_output(output);
    return n;
  }

  static void attr(onnx::NodeProto* n, const std::string& name, int64_t value) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(value);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, float value) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(value);
  }
  static void attr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& values) {
    auto* a = n->add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t v : values) a->add_ints(v);
  }

  const std::string& value(int id) const { return names_.at(static_cast<size_t>(id)); }
  std::string define(int id, const std::string& name) { return names_.at(static_cast<size_t>(id)) = fresh(name); }

  // --- graph pieces ------------------------------------------------------------------------------
  void input() {
    const auto& s = graph_.spec;
    auto* in = g_->add_input();
    in->set_name("image");
    in->set_doc_string("uint8 pixels [N, C, H, W], after the geometry in the metadata (qimera.preprocess)");
    auto* type = in->mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx::TensorProto::UINT8);
    auto* shape = type->mutable_shape();
    shape->add_dim()->set_dim_param("N");
    for (int64_t d : {s.in_channels, s.image_size, s.image_size}) shape->add_dim()->set_dim_value(d);
    // (x / 255 - mean) / std, in the project's Normalizer order.
    const auto channels = [](const std::vector<float>& v) {
      return at::tensor(v).reshape({1, static_cast<int64_t>(v.size()), 1, 1});
    };
    float_initializer("normalize.255", at::full({}, 255.0f), true);
    float_initializer("normalize.mean", channels(graph_.preprocess.mean));
    float_initializer("normalize.std", channels(graph_.preprocess.std));
    auto* cast = node("Cast", "normalize", {"image"}, "normalize.float");
    attr(cast, "to", static_cast<int64_t>(onnx::TensorProto::FLOAT));
    node("Div", "normalize", {"normalize.float", "normalize.255"}, "normalize.unit");
    node("Sub", "normalize", {"normalize.unit", "normalize.mean"}, "normalize.centred");
    node("Div", "normalize", {"normalize.centred", "normalize.std"}, define(InferenceGraph::kInput, "input"));
  }

  void output() {
    auto* out = g_->add_output();
    out->set_name("logits");
    auto* type = out->mutable_type()->mutable_tensor_type();
    type->set_elem_type(onnx::TensorProto::FLOAT);
    type->mutable_shape()->add_dim()->set_dim_param("N");
    type->mutable_shape()->add_dim()->set_dim_value(graph_.spec.num_classes);
    node("Identity", "output", {value(graph_.output)}, "logits");
  }

  // A weight's initializer name: float, or integers + DequantizeLinear (per output channel).
  std::string weight(const std::string& layer, const at::Tensor& w, const IntegerWeight& integer) {
    if (!integer.quantized()) {
      float_initializer(layer + ".weight", w);
      return layer + ".weight";
    }
    const auto zero_point = -integer.zero_point;
    const auto c = container_for(integer.bits, zero_point, options_, layer + " weight");
    integer_initializer(layer + ".weight_q", integer.q, c);
    float_initializer(layer + ".weight_scale", integer.scale.reciprocal());
    integer_initializer(layer + ".weight_zero_point", zero_point, c);
    auto* dq = node("DequantizeLinear", layer, {layer + ".weight_q", layer + ".weight_scale", layer + ".weight_zero_point"},
                    layer + ".weight");
    attr(dq, "axis", int64_t{0});
    tensors_.push_back({layer, "weight", integer.bits, container_name(c), false});
    return layer + ".weight";
  }

  void lower(const Node& n) {
    const std::string& in = value(n.inputs.at(0));
    std::visit(
        Overloaded{
            [&](const ConvOp& c) {
              std::vector<std::string> inputs{in, weight(n.name, c.weight, c.integer)};
              if (c.bias.defined()) {
                float_initializer(n.name + ".bias", c.bias);
                inputs.push_back(n.name + ".bias");
              }
              auto* conv = node("Conv", n.name, inputs, define(n.output, n.name));
              const int64_t k = c.spec.kernel_size, s = c.spec.stride, p = c.spec.padding,
                            d = c.spec.dilation;
              attr(conv, "kernel_shape", std::vector<int64_t>{k, k});
              attr(conv, "strides", std::vector<int64_t>{s, s});
              attr(conv, "pads", std::vector<int64_t>{p, p, p, p});
              attr(conv, "dilations", std::vector<int64_t>{d, d});
              attr(conv, "group", c.spec.groups);
            },
            [&](const LinearOp& l) {
              std::vector<std::string> inputs{in, weight(n.name, l.weight, l.integer)};
              if (l.bias.defined()) {
                float_initializer(n.name + ".bias", l.bias);
                inputs.push_back(n.name + ".bias");
              }
              attr(node("Gemm", n.name, inputs, define(n.output, n.name)), "transB", int64_t{1});
            },
            [&](const BatchNormOp& b) {
              const std::pair<const char*, at::Tensor> parts[] = {
                  {".weight", b.weight}, {".bias", b.bias}, {".running_mean", b.running_mean},
                  {".running_var", b.running_var}};
              for (const auto& [suffix, t] : parts) float_initializer(n.name + suffix, t);
              auto* bn = node("BatchNormalization", n.name,
                              {in, n.name + ".weight", n.name + ".bias", n.name + ".running_mean",
                               n.name + ".running_var"},
                              define(n.output, n.name));
              attr(bn, "epsilon", static_cast<float>(b.eps));
            },
            [&](const ActivationOp& a) {
              if (a.kind == quant::ActivationKind::ReLU) {
                node("Relu", n.name, {in}, define(n.output, n.name + ".relu"));
                return;
              }
              scalar_bound("relu6.lo", 0.0f);
              scalar_bound("relu6.hi", 6.0f);
              const auto out = define(n.output, n.name + ".relu6");
              if (feeds_quantizer_.at(static_cast<size_t>(n.output))) {
                clamp(n.name, in, "relu6.lo", "relu6.hi", out);
              } else {
                node("Clip", n.name, {in, "relu6.lo", "relu6.hi"}, out);
              }
            },
            [&](const FakeQuantOp& f) { fake_quant(n, f, in); },
            [&](const AddOp&) { node("Add", n.name, {in, value(n.inputs.at(1))}, define(n.output, n.name + ".add")); },
            [&](const MaxPoolOp& m) {
              auto* pool = node("MaxPool", n.name, {in}, define(n.output, n.name + ".pool"));
              attr(pool, "kernel_shape", std::vector<int64_t>{m.kernel, m.kernel});
              attr(pool, "strides", std::vector<int64_t>{m.stride, m.stride});
              attr(pool, "pads", std::vector<int64_t>{m.padding, m.padding, m.padding, m.padding});
            },
            [&](const GlobalAvgPoolOp&) { node("GlobalAveragePool", n.name, {in}, define(n.output, n.name)); },
            [&](const FlattenOp&) { attr(node("Flatten", n.name, {in}, define(n.output, n.name)), "axis", int64_t{1}); },
        },
        n.op);
  }

  // Clip as Max then Min: the form used right before a QuantizeLinear. ONNX Runtime (1.23 to at
  // least 1.30) fails to create a session when a Clip feeds an INT4 QuantizeLinear: its
  // ClipQuantFusion pass reads the zero point as 8 or 16 bits only.
  void clamp(const std::string& name, const std::string& in, const std::string& lo,
             const std::string& hi, const std::string& out) {
    const auto above = fresh(name + ".max");
    node("Max", name, {in, lo}, above);
    node("Min", name, {above, hi}, out);
  }

  void scalar_bound(const std::string& name, float v) {
    if (used_.count(name)) return;
    used_[name] = 1;
    float_initializer(name, at::full({}, v), true);
  }

  // [Clip ->] QuantizeLinear -> DequantizeLinear with scale 1/s and zero point -zp.
  void fake_quant(const Node& n, const FakeQuantOp& f, const std::string& in) {
    const auto params = f.params();
    const auto scale = params.scale.reciprocal().reshape({});
    const auto zero_point = (-params.zero_point).reshape({});
    const auto c = container_for(f.bits, zero_point, options_, n.name + " activation");
    const std::string q = n.name + ".q";
    float_initializer(q + "_scale", scale, true);
    integer_initializer(q + "_zero_point", zero_point, c, true);
    std::string x = in;
    // Clamped when saturation alone would not keep the n-bit grid, and between a MaxPool and an
    // INT4 QuantizeLinear: ONNX Runtime's QDQ propagation would otherwise move the quantizer in
    // front of the MaxPool, which has no INT4 kernel (the session fails to load).
    const bool clip = f.bits < container_bits(c) ||
                      (c == Container::Int4 && pooled_.at(static_cast<size_t>(n.inputs.at(0))));
    if (clip) {
      // The n-bit grid's ends in real values; QuantizeLinear maps them back to exactly qmin / qmax.
      const auto ends = (at::tensor({static_cast<float>(quant::qmin(f.bits)), static_cast<float>(quant::qmax(f.bits))}) +
                         params.zero_point.reshape({})) * scale;
      float_initializer(q + "_clip_lo", ends[0], true);
      float_initializer(q + "_clip_hi", ends[1], true);
      x = fresh(n.name + ".clipped");
      clamp(n.name, in, q + "_clip_lo", q + "_clip_hi", x);
    }
    const std::string quantized = fresh(n.name + ".quantized");
    node("QuantizeLinear", n.name, {x, q + "_scale", q + "_zero_point"}, quantized);
    node("DequantizeLinear", n.name, {quantized, q + "_scale", q + "_zero_point"}, define(n.output, n.name + ".dequantized"));
    tensors_.push_back({n.name, "activation", f.bits, container_name(c), clip});
  }

  void add_metadata(const nlohmann::json& metadata) {
    const auto put = [&](const std::string& key, const std::string& v) {
      auto* p = model_.add_metadata_props();
      p->set_key(key);
      p->set_value(v);
    };
    put("qimera.format", kOnnxFormat);
    put("qimera.model", graph_.spec.to_json().dump());
    put("qimera.preprocess", data::preprocess_to_json(graph_.preprocess).dump());
    put("qimera.input",
        "uint8 pixels [N, C, H, W] after the geometry of qimera.preprocess (resize, center_crop, pad, "
        "grey_to_rgb); the graph does (x / 255 - mean) / std itself");
    put("qimera.batch_norm", "kept: BatchNormalization in float after each Conv, as in the fake-quantized model");
    nlohmann::json layers = nlohmann::json::array();
    for (const auto& t : tensors_) {
      layers.push_back({{"name", t.name}, {"kind", t.kind}, {"bits", t.bits}, {"container", t.container},
                        {"clipped", t.clipped}});
    }
    put("qimera.quantized_tensors", layers.dump());
    for (const auto& [key, v] : metadata.items()) put("qimera." + key, v.is_string() ? v.get<std::string>() : v.dump());
  }

  const InferenceGraph& graph_;
  const OnnxOptions& options_;
  onnx::ModelProto model_;
  onnx::GraphProto* g_;
  std::vector<std::string> names_;
  std::vector<bool> feeds_quantizer_;
  std::vector<bool> pooled_;  // values written by a MaxPool
  std::map<std::string, int> used_;
  std::vector<OnnxTensorInfo> tensors_;
};

}  // namespace

bool onnx_export_available() { return true; }

std::string onnx_model_bytes(const InferenceGraph& graph, const OnnxOptions& options,
                             const nlohmann::json& metadata, OnnxExportSummary* summary) {
  at::NoGradGuard no_grad;
  OnnxExportSummary local;
  const auto model = OnnxBuilder(graph, options).build(metadata, summary ? *summary : local);
  std::string bytes;
  require(model.SerializeToString(&bytes), "ONNX serialization of {} failed", graph.spec.describe());
  return bytes;
}

#else  // built without libonnx-dev

bool onnx_export_available() { return false; }

std::string onnx_model_bytes(const InferenceGraph&, const OnnxOptions&, const nlohmann::json&,
                             OnnxExportSummary*) {
  fail("this qimera was built without ONNX support: install libonnx-dev (scripts/install-deps.sh) "
       "and reconfigure");
}

#endif

OnnxExportSummary export_onnx(const InferenceGraph& graph, const fs::path& file,
                              const OnnxOptions& options, const nlohmann::json& metadata) {
  OnnxExportSummary summary;
  const auto bytes = onnx_model_bytes(graph, options, metadata, &summary);
  write_file_atomically(file, bytes);
  summary.file = file;
  summary.file_bytes = static_cast<int64_t>(bytes.size());
  return summary;
}

}  // namespace qimera::deploy
