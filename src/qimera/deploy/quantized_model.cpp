#include "qimera/deploy/quantized_model.h"

#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/core/json_value.h"
#include "qimera/io/safetensors.h"
#include "qimera/io/state_dict.h"
#include "qimera/models/zoo.h"
#include "qimera/quant/integer_pack.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>

#include <map>
#include <set>

namespace qimera::deploy {
namespace fs = std::filesystem;

namespace {

constexpr const char* kQuantizedFormat = "qimera-quantized/1";

bool weight_quantized(const quant::QuantizableLayer& layer) {
  return layer.weight_quantizer() && layer.weight_quantizer()->active();
}

bool act_quantized(const quant::QuantizableLayer& layer) {
  return layer.act && layer.act->has_quantizer() && layer.act->enabled();
}

int64_t float32_size(const io::StateDict& state) {
  int64_t bytes = 0;
  for (const auto& [name, t] : state) {
    bytes += t.numel() * (at::isFloatingType(t.scalar_type()) ? 4 : static_cast<int64_t>(t.element_size()));
  }
  return bytes;
}

std::string relative_to(const fs::path& target, const fs::path& base_file) {
  std::error_code ec;
  auto rel = fs::relative(fs::absolute(target), fs::absolute(base_file).parent_path(), ec);
  return (ec || rel.empty()) ? fs::absolute(target).string() : rel.string();
}

}  // namespace

ExportSummary export_quantized(const models::ClassifierImpl& model, const quant::QuantConfig& config,
                               const data::Preprocess& preprocess, const fs::path& manifest_path,
                               const fs::path& source_model, const nlohmann::json& provenance) {
  at::NoGradGuard no_grad;
  const auto state = io::state_dict_of(model);
  std::set<std::string> replaced;
  io::StateDict out;
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& layer : quant::quantizable_layers(model)) {
    nlohmann::json entry{{"name", layer.name}, {"kind", layer.kind()}};
    if (weight_quantized(layer)) {
      const int bits = layer.weight_quantizer()->bits;
      const auto w = layer.weight().detach().cpu();
      require(at::isfinite(w).all().item<bool>(),
              "cannot export {}: the weights of layer {} hold NaN or infinite values",
              manifest_path.string(), layer.name);
      const auto range = quant::channel_range(w);
      const auto params = quant::affine_params(bits, range.lo, range.hi);
      out.emplace_back(layer.name + ".weight_q", quant::pack_integers(quant::quantize(w, params, bits), bits));
      out.emplace_back(layer.name + ".weight_scale", params.scale);
      out.emplace_back(layer.name + ".weight_zero_point", params.zero_point);
      replaced.insert(layer.name + ".weight");
      entry.update({{"bits", bits}, {"shape", w.sizes().vec()}, {"storage", quant::packing_name(bits)}});
    } else if (act_quantized(layer)) {
      const auto [lo, hi] = layer.act->range();
      const float lo_value = lo.item<float>(), hi_value = hi.item<float>();
      require(std::isfinite(lo_value) && std::isfinite(hi_value) && lo_value <= hi_value,
              "cannot export {}: the activation range of layer {} is [{}, {}] (not finite, or "
              "inverted); calibrate it first", manifest_path.string(), layer.name, lo_value,
              hi_value);
      out.emplace_back(layer.name + ".act_range", at::tensor({lo_value, hi_value}));
      entry.update({{"bits", layer.act->bits()}, {"range", {lo_value, hi_value}}});
    } else {
      entry["bits"] = 0;
    }
    if (layer.act) {
      for (const char* buffer : {".observer_lo", ".observer_hi", ".observer_aux"}) {
        replaced.insert(layer.name + buffer);
      }
    }
    layers.push_back(entry);
  }
  for (const auto& [name, tensor] : state) {
    if (!replaced.count(name)) out.emplace_back(name, tensor.cpu());
  }

  ExportSummary summary;
  summary.manifest = manifest_path;
  summary.weights = fs::path(manifest_path).replace_extension(".safetensors");
  io::write_safetensors(summary.weights, out, {{"format", kQuantizedFormat}});
  summary.file_bytes = static_cast<int64_t>(fs::file_size(summary.weights));
  // The float32 reference: the model's parameters and buffers without quantizer state.
  io::StateDict float_state;
  for (const auto& [name, tensor] : state) {
    if (name.find(".observer_") == std::string::npos) float_state.emplace_back(name, tensor);
  }
  summary.float32_bytes = float32_size(float_state);

  nlohmann::json manifest{{"format", kQuantizedFormat},
                          {"model", model.spec().to_json()},
                          {"quantization", config.to_json()},
                          {"layers", layers},
                          {"preprocess", data::preprocess_to_json(preprocess)},
                          {"weights", relative_to(summary.weights, manifest_path)},
                          {"sizes", {{"file_bytes", summary.file_bytes},
                                     {"float32_bytes", summary.float32_bytes}}},
                          {"provenance", provenance}};
  if (!source_model.empty()) manifest["source_model"] = relative_to(source_model, manifest_path);
  write_json(manifest_path, manifest);
  return summary;
}

bool is_quantized_manifest(const fs::path& path) {
  if (path.extension() != ".json" || !fs::exists(path)) return false;
  const auto j = read_json(path);
  return j.is_object() && j.contains("format") && j["format"] == kQuantizedFormat;
}

QuantizedManifest read_quantized_manifest(const fs::path& path) {
  const auto j = read_json(path);
  try {
    require(j.is_object() && j.contains("format") && j["format"] == kQuantizedFormat,
            "{}: not a qimera quantized-model manifest (\"format\" must be \"{}\", found {})",
            path.string(), kQuantizedFormat,
            j.is_object() && j.contains("format") ? json_excerpt(j["format"]) : "none");
    const std::string what = "manifest";
    QuantizedManifest m;
    m.spec = models::ModelSpec::from_json(json_field(j, "model", what));
    m.config = quant::QuantConfig::from_json(json_field(j, "quantization", what));
    const auto& layers = json_field(j, "layers", what);
    require(layers.is_array(), "\"layers\" is {}, expected a list", json_excerpt(layers));
    for (size_t i = 0; i < layers.size(); ++i) {
      const std::string where = fmt::format("layers[{}]", i);
      const auto& l = layers[i];
      m.layers.push_back({json_string(json_field(l, "name", where), where + ".name"),
                          json_string(json_field(l, "kind", where), where + ".kind"),
                          static_cast<int>(json_integer(json_field(l, "bits", where),
                                                        where + ".bits", 0, 64))});
      if (l.is_object() && l.contains("range")) {
        const auto& r = l["range"];
        require(r.is_array() && r.size() == 2, "{}.range is {}, expected [lo, hi]", where,
                json_excerpt(r));
        m.act_ranges[m.layers.back().name] = {json_number(r[0], where + ".range[0]"),
                                              json_number(r[1], where + ".range[1]")};
      }
    }
    m.preprocess = data::preprocess_from_json(json_field(j, "preprocess", what));
    const fs::path weights = json_string(json_field(j, "weights", what), "\"weights\"");
    m.weights = weights.is_absolute() ? weights : path.parent_path() / weights;
    if (j.contains("source_model")) {
      const fs::path source = json_string(j["source_model"], "\"source_model\"");
      m.source_model = source.is_absolute() ? source : path.parent_path() / source;
    }
    if (j.contains("provenance")) m.provenance = j["provenance"];
    return m;
  } catch (const nlohmann::json::exception& e) {
    fail("{}: malformed quantized-model manifest: {}", path.string(), e.what());
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.find(path.string()) != std::string::npos) throw;
    fail("{}: {}", path.string(), message);
  }
}

namespace {

// Quantization parameters that are not finite, or a range whose ends are swapped, make every
// prediction garbage (top-1 near chance) without any other sign.
void check_parameters(const std::string& source, const std::string& tensor, const std::string& problem,
                      io::NonFinite policy) {
  if (problem.empty()) return;
  if (policy == io::NonFinite::Warn) {
    spdlog::warn("{}: tensor '{}' {}; loading it anyway as asked", source, tensor, problem);
    return;
  }
  fail("{}: tensor '{}' {}: the quantized model would compute garbage. If that is intended, "
       "--allow-nonfinite loads it with a warning", source, tensor, problem);
}

std::string range_problem(const at::Tensor& range) {
  const float lo = range[0].item<float>(), hi = range[1].item<float>();
  if (!std::isfinite(lo) || !std::isfinite(hi)) return fmt::format("is [{}, {}], not finite", lo, hi);
  if (lo > hi) return fmt::format("is [{}, {}]: the range is inverted", lo, hi);
  return "";
}

std::string scale_problem(const at::Tensor& scale, const at::Tensor& zero_point) {
  if (!at::isfinite(scale).all().item<bool>() || !at::isfinite(zero_point).all().item<bool>()) {
    return "holds values that are not finite";
  }
  if (!(scale > 0).all().item<bool>()) {
    return fmt::format("holds a scale of {} (scales must be positive: the weight range is "
                       "inverted or empty)", scale.min().item<float>());
  }
  return "";
}

void check_stated_range(const QuantizedManifest& manifest, const std::string& layer,
                        const at::Tensor& range, const std::string& source) {
  const auto stated = manifest.act_ranges.find(layer);
  if (stated == manifest.act_ranges.end()) return;
  const double lo = range[0].item<double>(), hi = range[1].item<double>();
  const auto& [stated_lo, stated_hi] = stated->second;
  // The manifest prints the same float32 values, so only rounding may separate them.
  auto close = [](double a, double b) { return std::abs(a - b) <= 1e-6 * std::max(1.0, std::abs(b)); };
  require(close(stated_lo, lo) && close(stated_hi, hi),
          "the manifest states layer {}'s range as [{}, {}], but '{}.act_range' in {} (what "
          "runs) is [{}, {}]; change the weights file too, or export the model again",
          layer, stated_lo, stated_hi, layer, source, lo, hi);
}

}  // namespace

models::Classifier load_quantized(const QuantizedManifest& manifest, c10::Device device,
                                  io::NonFinite nonfinite) {
  auto model = models::build_model(manifest.spec);
  auto file = io::read_safetensors(manifest.weights);
  const std::string source = manifest.weights.string();
  io::check_finite(file, source, nonfinite);
  std::map<std::string, at::Tensor> tensors(file.begin(), file.end());
  auto take = [&](const std::string& key) {
    const auto it = tensors.find(key);
    require(it != tensors.end(), "{}: missing tensor '{}'", manifest.weights.string(), key);
    auto t = it->second;
    tensors.erase(it);
    return t;
  };
  const auto layers = quant::quantizable_layers(*model);
  require(layers.size() == manifest.layers.size(), "{}: {} layers listed, the architecture has {}",
          manifest.weights.string(), manifest.layers.size(), layers.size());
  // Quantized observer kind does not matter once ranges are set: min/max reads its state as is.
  quant::ObserverOptions fixed;
  fixed.kind = quant::ObserverKind::MinMax;
  for (size_t i = 0; i < layers.size(); ++i) {
    const auto& layer = layers[i];
    const auto& entry = manifest.layers[i];
    require(layer.name == entry.name && layer.kind() == entry.kind,
            "manifest layer {} ({}) does not match the architecture's {} ({})", entry.name,
            entry.kind, layer.name, layer.kind());
    if (entry.bits == 0) continue;
    if (layer.act) {
      const auto range = take(layer.name + ".act_range");
      require(range.numel() == 2 && at::isFloatingType(range.scalar_type()),
              "{}: {}.act_range must hold 2 floating-point values", source, layer.name);
      const auto problem = range_problem(range);
      check_parameters(source, layer.name + ".act_range", problem, nonfinite);
      // A damaged range loaded on purpose (--allow-nonfinite) was already reported.
      if (problem.empty()) check_stated_range(manifest, layer.name, range, source);
      layer.act->attach_quantizer(entry.bits, fixed, manifest.config.ste, c10::kCPU);
      layer.act->set_range(range[0].item<float>(), range[1].item<float>());
      continue;
    }
    const auto weight = layer.weight();
    const auto scale = take(layer.name + ".weight_scale");
    const auto zero_point = take(layer.name + ".weight_zero_point");
    require(at::isFloatingType(scale.scalar_type()) && at::isFloatingType(zero_point.scalar_type()),
            "{}: {}.weight_scale and .weight_zero_point must be floating point", source, layer.name);
    check_parameters(source, layer.name + ".weight_scale", scale_problem(scale, zero_point),
                     nonfinite);
    const auto ints = quant::unpack_integers(take(layer.name + ".weight_q"), entry.bits, weight.numel());
    tensors[layer.name + ".weight"] = quant::dequantize(ints.reshape(weight.sizes()), {scale, zero_point});
    *layer.weight_quantizer() = quant::WeightQuantizer{entry.bits, manifest.config.ste, false};
  }
  // Observer buffers come from the ranges just set; everything else from the file.
  io::StateDict state;
  for (const auto& [name, tensor] : io::state_dict_of(*model)) {
    if (name.find(".observer_") != std::string::npos) {
      state.emplace_back(name, tensor);
    } else {
      state.emplace_back(name, take(name));
    }
  }
  require(tensors.empty(), "{}: unexpected tensor '{}'", manifest.weights.string(),
          tensors.empty() ? "" : tensors.begin()->first);
  io::load_state_dict(*model, state);
  model->to(device);
  model->eval();
  return model;
}

std::vector<std::string> adopt_act_ranges(models::ClassifierImpl& model,
                                          const QuantizedManifest& source,
                                          const fs::path& source_path,
                                          const std::vector<std::string>& patterns) {
  const auto layers = quant::quantizable_layers(model);
  const auto where = source_path.string();
  require(layers.size() == source.layers.size(),
          "{}: {} quantizable layers, the model whose ranges it should replace has {} (a different "
          "architecture)", where, source.layers.size(), layers.size());
  for (size_t i = 0; i < layers.size(); ++i) {
    require(layers[i].name == source.layers[i].name,
            "{}: layer {} is {}, the model's is {} (a different architecture)", where, i,
            source.layers[i].name, layers[i].name);
  }
  std::vector<std::string> changed;
  std::set<std::string> used;
  for (const auto& layer : layers) {
    if (!layer.act || !layer.act->has_quantizer()) continue;
    bool selected = patterns.empty();
    for (const auto& p : patterns) {
      if (!quant::layer_name_matches(p, layer.name)) continue;
      used.insert(p);
      selected = true;
    }
    if (!selected) continue;
    const auto range = source.act_ranges.find(layer.name);
    require(range != source.act_ranges.end(),
            "{}: activation {} is not quantized there, so it has no range to take", where,
            layer.name);
    const auto [lo, hi] = range->second;
    require(std::isfinite(lo) && std::isfinite(hi) && lo <= hi,
            "{}: the range of activation {} is [{}, {}] (not finite, or inverted)", where,
            layer.name, lo, hi);
    layer.act->set_range(static_cast<float>(lo), static_cast<float>(hi));
    changed.push_back(layer.name);
  }
  const auto example = std::find_if(layers.begin(), layers.end(), [](const auto& l) { return l.act; });
  for (const auto& p : patterns) {
    require(used.count(p),
            "activation-range pattern '{}' matches no quantized activation (names look like '{}')",
            p, example == layers.end() ? std::string("none") : example->name);
  }
  return changed;
}

}  // namespace qimera::deploy
