#include "qimera/quant/convert.h"

#include "qimera/core/error.h"
#include "qimera/core/json_value.h"
#include "qimera/quant/layers.h"

#include <fmt/ranges.h>
#include <fnmatch.h>
#include <nlohmann/json.hpp>

#include <set>

namespace qimera::quant {
namespace {

int parse_bits(const std::string& text, const std::string& whole) {
  try {
    size_t used = 0;
    const int bits = std::stoi(text, &used);
    if (used == text.size()) return bits;
  } catch (const std::exception&) {
  }
  fail("layer override '{}': '{}' is not a bit width", whole, text);
}

bool matches(const LayerOverride& o, const std::string& name, const std::string& first,
             const std::string& last) {
  if (o.pattern == "@first") return name == first;
  if (o.pattern == "@last") return name == last;
  return layer_name_matches(o.pattern, name);
}

c10::Device device_of(const torch::nn::Module& model) {
  for (const auto& p : model.parameters()) return p.device();
  return c10::Device(c10::kCPU);
}

}  // namespace

bool layer_name_matches(const std::string& glob, const std::string& layer_name) {
  return ::fnmatch(glob.c_str(), layer_name.c_str(), 0) == 0;
}

WeightQuantizer* QuantizableLayer::weight_quantizer() const {
  return conv ? &conv->quantizer : linear ? &linear->quantizer : nullptr;
}

at::Tensor QuantizableLayer::weight() const {
  return conv ? conv->weight : linear ? linear->weight : at::Tensor();
}

std::string QuantizableLayer::kind() const { return conv ? "conv" : linear ? "linear" : "act"; }

std::vector<QuantizableLayer> quantizable_layers(const torch::nn::Module& model) {
  std::vector<QuantizableLayer> layers;
  for (const auto& item : model.named_modules()) {
    QuantizableLayer q{item.key(), std::dynamic_pointer_cast<QuantConv2dImpl>(item.value()),
                       std::dynamic_pointer_cast<QuantLinearImpl>(item.value()),
                       std::dynamic_pointer_cast<QuantActImpl>(item.value())};
    if (q.conv || q.linear || q.act) layers.push_back(std::move(q));
  }
  return layers;
}

LayerOverride parse_layer_override(const std::string& text) {
  const auto eq = text.rfind('=');
  require(eq != std::string::npos && eq > 0 && eq + 1 < text.size(),
          "layer override '{}': expected PATTERN=BITS, PATTERN=WxA or PATTERN=float", text);
  LayerOverride o;
  o.pattern = text.substr(0, eq);
  const std::string value = text.substr(eq + 1);
  if (value == "float") {
    o.weight_bits = 0;
    o.act_bits = 0;
    return o;
  }
  const auto x = value.find('x');
  o.weight_bits = parse_bits(value.substr(0, x), text);
  o.act_bits = x == std::string::npos ? *o.weight_bits : parse_bits(value.substr(x + 1), text);
  for (int bits : {*o.weight_bits, *o.act_bits}) {
    if (bits != 0) check_bits(bits);
  }
  return o;
}

void QuantConfig::validate() const {
  check_bits(weight_bits);
  check_bits(act_bits);
  observer.validate();
}

namespace {

std::string override_text(const LayerOverride& o) {
  const auto bits = [](const std::optional<int>& b) { return b ? std::to_string(*b) : "-"; };
  if (o.weight_bits == 0 && o.act_bits == 0) return o.pattern + "=float";
  if (o.weight_bits == o.act_bits) return o.pattern + "=" + bits(o.weight_bits);
  return o.pattern + "=" + bits(o.weight_bits) + "x" + bits(o.act_bits);
}

}  // namespace

// The overrides are part of the name: "4w4a" for a model whose layers are all float would lie.
std::string QuantConfig::short_name() const {
  std::string name = fmt::format("{}w{}a", weight_bits, act_bits);
  if (overrides.empty()) return name;
  std::vector<std::string> texts;
  for (const auto& o : overrides) texts.push_back(override_text(o));
  return fmt::format("{} ({})", name, fmt::join(texts, ", "));
}

nlohmann::json QuantConfig::to_json() const {
  nlohmann::json overrides_json = nlohmann::json::array();
  for (const auto& o : overrides) {
    nlohmann::json j{{"pattern", o.pattern}};
    if (o.weight_bits) j["weight_bits"] = *o.weight_bits;
    if (o.act_bits) j["act_bits"] = *o.act_bits;
    overrides_json.push_back(j);
  }
  return {{"weight_bits", weight_bits}, {"act_bits", act_bits}, {"ste", to_string(ste)},
          {"observer", observer.to_json()}, {"overrides", overrides_json}};
}

QuantConfig QuantConfig::from_json(const nlohmann::json& j) {
  const std::string what = "quantization";
  const auto bits = [](const nlohmann::json& value, const std::string& name) {
    return static_cast<int>(json_integer(value, name, 0, 64));
  };
  QuantConfig c;
  c.weight_bits = bits(json_field(j, "weight_bits", what), what + " weight_bits");
  c.act_bits = bits(json_field(j, "act_bits", what), what + " act_bits");
  if (j.contains("ste")) c.ste = parse_ste(json_string(j.at("ste"), what + " ste"));
  if (j.contains("observer")) c.observer = ObserverOptions::from_json(j.at("observer"));
  if (j.contains("overrides")) {
    const auto& overrides = j.at("overrides");
    require(overrides.is_array(), "{} overrides is {}, expected a list", what,
            json_excerpt(overrides));
    for (const auto& o : overrides) {
      const std::string where = what + " override";
      LayerOverride lo{json_string(json_field(o, "pattern", where), where + " pattern"),
                       std::nullopt, std::nullopt};
      if (o.contains("weight_bits")) lo.weight_bits = bits(o["weight_bits"], where + " weight_bits");
      if (o.contains("act_bits")) lo.act_bits = bits(o["act_bits"], where + " act_bits");
      c.overrides.push_back(lo);
    }
  }
  c.validate();
  return c;
}

std::vector<LayerQuantization> convert(torch::nn::Module& model, const QuantConfig& config) {
  config.validate();
  const auto layers = quantizable_layers(model);
  std::string first, last;
  for (const auto& l : layers) {
    if (!l.weight_quantizer()) continue;
    if (first.empty()) first = l.name;
    last = l.name;
  }
  const auto device = device_of(model);
  std::set<size_t> used_overrides;
  std::vector<LayerQuantization> report;
  for (const auto& layer : layers) {
    const bool is_weight = layer.weight_quantizer() != nullptr;
    int bits = is_weight ? config.weight_bits : config.act_bits;
    for (size_t i = 0; i < config.overrides.size(); ++i) {
      const auto& o = config.overrides[i];
      if (!matches(o, layer.name, first, last)) continue;
      used_overrides.insert(i);
      const auto& value = is_weight ? o.weight_bits : o.act_bits;
      if (value) bits = *value;
    }
    if (is_weight) {
      *layer.weight_quantizer() = WeightQuantizer{bits, config.ste, true};
    } else if (bits > 0) {
      layer.act->attach_quantizer(bits, config.observer, config.ste, device);
    }
    report.push_back({layer.name, layer.kind(), bits});
  }
  for (size_t i = 0; i < config.overrides.size(); ++i) {
    require(used_overrides.count(i) > 0,
            "layer override pattern '{}' matches no quantizable layer (names look like '{}')",
            config.overrides[i].pattern, layers.empty() ? std::string("?") : layers.front().name);
  }
  return report;
}

std::vector<LayerQuantization> describe_quantization(const torch::nn::Module& model) {
  std::vector<LayerQuantization> out;
  for (const auto& layer : quantizable_layers(model)) {
    const int bits = layer.weight_quantizer() ? layer.weight_quantizer()->bits : layer.act->bits();
    out.push_back({layer.name, layer.kind(), bits});
  }
  return out;
}

void copy_quantization(const torch::nn::Module& from, torch::nn::Module& to) {
  const auto source = quantizable_layers(from);
  const auto target = quantizable_layers(to);
  require(source.size() == target.size(), "copy_quantization: models differ ({} vs {} layers)",
          source.size(), target.size());
  const auto device = device_of(to);
  for (size_t i = 0; i < source.size(); ++i) {
    const auto& s = source[i];
    const auto& t = target[i];
    require(s.name == t.name && s.kind() == t.kind(), "copy_quantization: layer {} vs {}", s.name,
            t.name);
    if (auto* wq = s.weight_quantizer()) *t.weight_quantizer() = *wq;
    if (s.act && s.act->has_quantizer()) {
      t.act->attach_quantizer(s.act->bits(), s.act->observer(), s.act->ste(), device);
      t.act->set_observing(s.act->observing());
      t.act->set_enabled(s.act->enabled());
    }
  }
}

void set_observing(torch::nn::Module& model, bool observing) {
  for (const auto& layer : quantizable_layers(model)) {
    if (layer.act) layer.act->set_observing(observing);
  }
}

void set_quantization_enabled(torch::nn::Module& model, bool enabled) {
  for (const auto& layer : quantizable_layers(model)) {
    if (auto* q = layer.weight_quantizer()) q->enabled = enabled;
    if (layer.act) layer.act->set_enabled(enabled);
  }
}

}  // namespace qimera::quant
