// What a classifier is: architecture, classes, input channels and size. The zoo builds a model from
// this; model cards and quantized-model manifests store it.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace qimera::models {

/// The architectures of pytorchcv that the paper uses.
enum class Arch {
  ResNet20Cifar,  // pytorchcv resnet20_cifar10 / resnet20_cifar100
  ResNet18,
  ResNet50,
  MobileNetV2,  // pytorchcv mobilenetv2_w1
};

inline constexpr Arch kAllArchs[] = {Arch::ResNet20Cifar, Arch::ResNet18, Arch::ResNet50,
                                     Arch::MobileNetV2};

std::string to_string(Arch arch);
Arch parse_arch(const std::string& name);

/// Upper bounds of a ModelSpec: a model card is user input, and its sizes decide allocations.
inline constexpr int64_t kMaxClasses = 100000;
inline constexpr int64_t kMaxInputChannels = 64;
inline constexpr int64_t kMaxImageSize = 1024;

struct ModelSpec {
  Arch arch = Arch::ResNet20Cifar;
  int64_t num_classes = 10;
  int64_t in_channels = 3;
  int64_t image_size = 32;

  void validate() const;
  /// "resnet20 (10 classes, 1x28x28 input)".
  std::string describe() const;
  nlohmann::json to_json() const;
  static ModelSpec from_json(const nlohmann::json& j);
  bool operator==(const ModelSpec& o) const {
    return arch == o.arch && num_classes == o.num_classes && in_channels == o.in_channels &&
           image_size == o.image_size;
  }
};

/// The pytorchcv model names: resnet20_cifar10, resnet20_cifar100, resnet18, resnet50, mobilenetv2_w1.
ModelSpec preset_spec(const std::string& name);
std::vector<std::string> preset_names();

}  // namespace qimera::models
