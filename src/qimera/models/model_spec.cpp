#include "qimera/models/model_spec.h"

#include "qimera/core/error.h"
#include "qimera/core/json_value.h"

#include <nlohmann/json.hpp>

#include <map>

namespace qimera::models {
namespace {

const std::map<std::string, ModelSpec>& presets() {
  static const std::map<std::string, ModelSpec> table = {
      {"resnet20_cifar10", {Arch::ResNet20Cifar, 10, 3, 32}},
      {"resnet20_cifar100", {Arch::ResNet20Cifar, 100, 3, 32}},
      {"resnet18", {Arch::ResNet18, 1000, 3, 224}},
      {"resnet50", {Arch::ResNet50, 1000, 3, 224}},
      {"mobilenetv2_w1", {Arch::MobileNetV2, 1000, 3, 224}},
  };
  return table;
}

}  // namespace

std::string to_string(Arch arch) {
  switch (arch) {
    case Arch::ResNet20Cifar: return "resnet20";
    case Arch::ResNet18: return "resnet18";
    case Arch::ResNet50: return "resnet50";
    case Arch::MobileNetV2: return "mobilenetv2_w1";
  }
  return "?";
}

Arch parse_arch(const std::string& name) {
  for (Arch arch : kAllArchs) {
    if (name == to_string(arch)) return arch;
  }
  fail("unknown architecture '{}': expected resnet20, resnet18, resnet50 or mobilenetv2_w1", name);
}

void ModelSpec::validate() const {
  require(num_classes >= 2 && num_classes <= kMaxClasses,
          "a classifier needs 2 to {} classes, got {}", kMaxClasses, num_classes);
  require(in_channels >= 1 && in_channels <= kMaxInputChannels,
          "input channels must be 1 to {}, got {}", kMaxInputChannels, in_channels);
  const int64_t min_size = arch == Arch::ResNet20Cifar ? 8 : 32;
  require(image_size >= min_size, "{} needs an input of at least {}x{} pixels, got {}",
          to_string(arch), min_size, min_size, image_size);
  require(image_size <= kMaxImageSize,
          "{}x{} inputs are larger than the {}x{} this program supports (ImageNet models take "
          "224x224)",
          image_size, image_size, kMaxImageSize, kMaxImageSize);
}

std::string ModelSpec::describe() const {
  return fmt::format("{} ({} classes, {}x{}x{} input)", to_string(arch), num_classes, in_channels,
                     image_size, image_size);
}

nlohmann::json ModelSpec::to_json() const {
  return {{"arch", to_string(arch)},
          {"num_classes", num_classes},
          {"in_channels", in_channels},
          {"image_size", image_size}};
}

ModelSpec ModelSpec::from_json(const nlohmann::json& j) {
  const std::string what = "model spec";
  ModelSpec s;
  s.arch = parse_arch(json_string(json_field(j, "arch", what), what + " arch"));
  // The ranges here only keep the numbers meaningful; validate() says what is sensible.
  s.num_classes = json_integer(json_field(j, "num_classes", what), what + " num_classes", 0,
                               INT64_MAX);
  s.in_channels = json_integer(json_field(j, "in_channels", what), what + " in_channels", 0,
                               INT64_MAX);
  s.image_size = json_integer(json_field(j, "image_size", what), what + " image_size", 0,
                              INT64_MAX);
  s.validate();
  return s;
}

ModelSpec preset_spec(const std::string& name) {
  const auto it = presets().find(name);
  if (it == presets().end()) {
    fail("unknown model '{}': expected one of {}", name, fmt::join(preset_names(), ", "));
  }
  return it->second;
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, spec] : presets()) names.push_back(name);
  return names;
}

}  // namespace qimera::models
