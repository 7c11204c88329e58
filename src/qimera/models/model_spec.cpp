#include "qimera/models/model_spec.h"

#include "qimera/core/error.h"

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
  require(num_classes >= 2, "a classifier needs at least 2 classes, got {}", num_classes);
  require(in_channels >= 1, "input channels must be positive, got {}", in_channels);
  const int64_t min_size = arch == Arch::ResNet20Cifar ? 8 : 32;
  require(image_size >= min_size, "{} needs an input of at least {}x{} pixels, got {}",
          to_string(arch), min_size, min_size, image_size);
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
  ModelSpec s;
  try {
    s.arch = parse_arch(j.at("arch").get<std::string>());
    s.num_classes = j.at("num_classes").get<int64_t>();
    s.in_channels = j.at("in_channels").get<int64_t>();
    s.image_size = j.at("image_size").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    fail("model spec: {} (expected arch, num_classes, in_channels, image_size)", e.what());
  }
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
