#include "qimera/deploy/lower.h"

#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/deploy/model_card.h"
#include "qimera/io/safetensors.h"
#include "qimera/models/batch_norm.h"
#include "qimera/models/conv_block.h"
#include "qimera/models/mobilenet_v2.h"
#include "qimera/models/res_unit.h"
#include "qimera/models/resnet.h"
#include "qimera/models/stack.h"
#include "qimera/quant/integer_pack.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace qimera::deploy {
namespace fs = std::filesystem;
namespace {

using ModulePtr = std::shared_ptr<torch::nn::Module>;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

ModulePtr child(const torch::nn::Module& module, const std::string& name) {
  for (const auto& item : module.named_children()) {
    if (item.key() == name) return item.value();
  }
  return nullptr;
}

template <typename Impl>
std::shared_ptr<Impl> child_as(const torch::nn::Module& module, const std::string& name) {
  return std::dynamic_pointer_cast<Impl>(child(module, name));
}

// The weight integers as export_quantized computes them from the current weights.
IntegerWeight integers_of(const at::Tensor& weight, int bits) {
  const auto w = weight.detach().cpu();
  const auto range = quant::channel_range(w);
  const auto params = quant::affine_params(bits, range.lo, range.hi);
  return {bits, quant::quantize(w, params, bits), params.scale, params.zero_point};
}

// Mirrors the forward() of every module type of the zoo. Two zoo modules are private to their
// files (the ImageNet ResNet's stem and MobileNetV2's bottleneck); they are recognised by their
// type names and their fixed structure.
class Lowering {
 public:
  Lowering(InferenceGraph& graph, const IntegerWeights& integers)
      : graph_(graph), integers_(integers) {}

  int module(const std::string& name, const ModulePtr& m, int x) {
    if (auto stack = std::dynamic_pointer_cast<models::StackImpl>(m)) {
      for (const auto& item : stack->named_children()) x = module(join(name, item.key()), item.value(), x);
      return x;
    }
    if (std::dynamic_pointer_cast<models::ConvBlockImpl>(m)) return conv_block(name, *m, x);
    if (std::dynamic_pointer_cast<models::ResUnitImpl>(m)) return res_unit(name, *m, x);
    if (auto conv = std::dynamic_pointer_cast<quant::QuantConv2dImpl>(m)) return conv_layer(name, *conv, x);
    if (auto bn = std::dynamic_pointer_cast<models::TappedBatchNorm2dImpl>(m)) return batch_norm(name, *bn, x);
    if (auto act = std::dynamic_pointer_cast<quant::QuantActImpl>(m)) return activation(name, *act, x);
    if (auto linear = std::dynamic_pointer_cast<quant::QuantLinearImpl>(m)) return linear_layer(name, *linear, x);
    if (ends_with(m->name(), "::ResInitBlockImpl")) {
      x = module(join(name, "conv"), required(*m, name, "conv"), x);
      return emit(name, MaxPoolOp{3, 2, 1}, {x});
    }
    if (ends_with(m->name(), "::LinearBottleneckImpl")) return linear_bottleneck(name, *m, x);
    fail("cannot lower module '{}' of type {}: the deployment graph does not know it", name, m->name());
  }

  int emit(const std::string& name, Op op, std::vector<int> inputs) {
    Node node{name, std::move(op), std::move(inputs), graph_.num_values++};
    graph_.nodes.push_back(std::move(node));
    return graph_.nodes.back().output;
  }

 private:
  ModulePtr required(const torch::nn::Module& m, const std::string& name, const std::string& part) {
    auto c = child(m, part);
    require(c != nullptr, "cannot lower '{}': it has no submodule '{}'", name, part);
    return c;
  }

  int conv_block(const std::string& name, const torch::nn::Module& m, int x) {
    x = module(join(name, "conv"), required(m, name, "conv"), x);
    x = module(join(name, "bn"), required(m, name, "bn"), x);
    if (auto act = child(m, "activ")) x = module(join(name, "activ"), act, x);
    return x;
  }

  // pytorchcv's ResUnit: identity branch, body, addition, activation.
  int res_unit(const std::string& name, const torch::nn::Module& m, int x) {
    int identity = x;
    if (auto projection = child(m, "identity_conv")) {
      identity = module(join(name, "identity_conv"), projection, x);
    }
    const int body = module(join(name, "body"), required(m, name, "body"), x);
    const int sum = emit(name, AddOp{}, {body, identity});
    return module(join(name, "activ"), required(m, name, "activ"), sum);
  }

  // MobileNetV2's LinearBottleneck: residual exactly when the shape is unchanged.
  int linear_bottleneck(const std::string& name, const torch::nn::Module& m, int x) {
    const auto conv_of = [&](const std::string& part) {
      auto block = required(m, name, part);
      auto conv = child_as<quant::QuantConv2dImpl>(*block, "conv");
      require(conv != nullptr, "cannot lower '{}.{}': no convolution", name, part);
      return conv->spec();
    };
    const bool residual = conv_of("conv1").in_channels == conv_of("conv3").out_channels &&
                          conv_of("conv2").stride == 1;
    int y = x;
    for (const char* part : {"conv1", "conv2", "conv3"}) y = module(join(name, part), required(m, name, part), y);
    return residual ? emit(name, AddOp{}, {y, x}) : y;
  }

  IntegerWeight integer_weight(const std::string& name, const at::Tensor& weight,
                               const at::Tensor& used, const quant::WeightQuantizer& quantizer) {
    const auto it = integers_.find(name);
    if (it != integers_.end()) {
      const auto& w = it->second;
      require(w.q.sizes() == weight.sizes(), "layer {}: integer weights of shape {} for a weight of shape {}",
              name, w.q.sizes(), weight.sizes());
      require(at::equal(quant::dequantize(w.q, {w.scale, w.zero_point}), used.detach().cpu()),
              "layer {}: the integer weights do not dequantize to the model's weights", name);
      return w;
    }
    if (quantizer.active()) return integers_of(weight, quantizer.bits);
    return {};
  }

  int conv_layer(const std::string& name, const quant::QuantConv2dImpl& conv, int x) {
    const auto used = conv.effective_weight().detach();
    ConvOp op{conv.spec(), used, conv.bias.defined() ? conv.bias.detach() : at::Tensor(),
              integer_weight(name, conv.weight, used, conv.quantizer)};
    return emit(name, std::move(op), {x});
  }

  int linear_layer(const std::string& name, const quant::QuantLinearImpl& linear, int x) {
    const auto used = linear.effective_weight().detach();
    LinearOp op{used, linear.bias.defined() ? linear.bias.detach() : at::Tensor(),
                integer_weight(name, linear.weight, used, linear.quantizer)};
    return emit(name, std::move(op), {x});
  }

  int batch_norm(const std::string& name, const models::TappedBatchNorm2dImpl& bn, int x) {
    BatchNormOp op{bn.weight.detach(), bn.bias.detach(), bn.running_mean.detach(),
                   bn.running_var.detach(), bn.eps, bn.momentum};
    return emit(name, std::move(op), {x});
  }

  int activation(const std::string& name, const quant::QuantActImpl& act, int x) {
    x = emit(name, ActivationOp{act.kind()}, {x});
    if (!act.has_quantizer() || !act.enabled()) return x;
    auto [lo, hi] = act.range();
    return emit(name, FakeQuantOp{act.bits(), lo.detach().clone(), hi.detach().clone()}, {x});
  }

  InferenceGraph& graph_;
  const IntegerWeights& integers_;
};

}  // namespace

IntegerWeights read_integer_weights(const QuantizedManifest& manifest, const torch::nn::Module& model) {
  const auto file = io::read_safetensors(manifest.weights);
  std::map<std::string, at::Tensor> tensors(file.begin(), file.end());
  const auto take = [&](const std::string& key) {
    const auto it = tensors.find(key);
    require(it != tensors.end(), "{}: missing tensor '{}'", manifest.weights.string(), key);
    return it->second;
  };
  IntegerWeights out;
  for (const auto& layer : quant::quantizable_layers(model)) {
    if (layer.act) continue;
    const auto entry = std::find_if(manifest.layers.begin(), manifest.layers.end(),
                                    [&](const auto& l) { return l.name == layer.name; });
    if (entry == manifest.layers.end() || entry->bits == 0) continue;
    const auto shape = layer.weight().sizes();
    const auto ints = quant::unpack_integers(take(layer.name + ".weight_q"), entry->bits,
                                             layer.weight().numel());
    out[layer.name] = {entry->bits, ints.reshape(shape), take(layer.name + ".weight_scale"),
                       take(layer.name + ".weight_zero_point")};
  }
  return out;
}

InferenceGraph lower(const models::ClassifierImpl& model, const data::Preprocess& preprocess,
                     const IntegerWeights& integers) {
  at::NoGradGuard no_grad;
  InferenceGraph graph;
  graph.spec = model.spec();
  graph.preprocess = preprocess;
  Lowering lowering(graph, integers);
  const auto features = child(model, "features");
  const auto output = child(model, "output");
  require(features && output, "cannot lower {}: expected 'features' and 'output' modules",
          model.spec().describe());
  int x = lowering.module("features", features, InferenceGraph::kInput);
  x = lowering.emit("pool", GlobalAvgPoolOp{}, {x});
  if (dynamic_cast<const models::MobileNetV2Impl*>(&model)) {
    // MobileNetV2 classifies with a 1x1 convolution on the pooled [N, C, 1, 1] features.
    x = lowering.module("output", output, x);
    x = lowering.emit("flatten", FlattenOp{}, {x});
  } else {
    require(dynamic_cast<const models::ResNetImpl*>(&model) != nullptr,
            "cannot lower {}: unknown classifier type", model.spec().describe());
    x = lowering.emit("flatten", FlattenOp{}, {x});
    x = lowering.module("output", output, x);
  }
  graph.output = x;
  return graph;
}

InferenceGraph lower_quantized(const QuantizedManifest& manifest) {
  const auto model = load_quantized(manifest, c10::kCPU);
  return lower(*model, manifest.preprocess, read_integer_weights(manifest, *model));
}

fs::path resolve_model_file(const fs::path& path) {
  if (fs::is_directory(path)) {
    const auto manifest = path / "quantized.json";
    require(fs::exists(manifest), "{} is a folder without quantized.json (expected a run folder of "
            "'qimera quantize', a quantized.json or a model card)", path.string());
    return manifest;
  }
  require(fs::exists(path), "{}: no such file or folder", path.string());
  return path;
}

InferenceGraph lower_file(const fs::path& given) {
  const auto path = resolve_model_file(given);
  if (is_quantized_manifest(path)) return lower_quantized(read_quantized_manifest(path));
  const auto j = read_json(path);
  const std::string format = j.is_object() ? j.value("format", std::string()) : std::string();
  require(format == "qimera-model/1",
          "{}: neither a quantized model (format qimera-quantized/1, from qimera quantize) nor a model "
          "card (qimera-model/1){}", path.string(), format.empty() ? "" : fmt::format(", but format '{}'", format));
  const auto card = read_model_card(path);
  const auto model = load_classifier(card, c10::kCPU);
  return lower(*model, card.preprocess);
}

}  // namespace qimera::deploy
