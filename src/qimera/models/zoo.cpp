#include "qimera/models/zoo.h"

#include "qimera/core/error.h"
#include "qimera/models/mobilenet_v2.h"
#include "qimera/models/resnet.h"
#include "qimera/quant/convert.h"

#include <ATen/ATen.h>

namespace qimera::models {

Classifier build_model(const ModelSpec& spec) {
  spec.validate();
  switch (spec.arch) {
    case Arch::ResNet20Cifar:
    case Arch::ResNet18:
    case Arch::ResNet50: return std::make_shared<ResNetImpl>(spec);
    case Arch::MobileNetV2: return std::make_shared<MobileNetV2Impl>(spec);
  }
  fail("unsupported architecture");
}

void for_each_preset(const std::function<void(const std::string&, const ModelSpec&)>& fn) {
  for (const auto& name : preset_names()) fn(name, preset_spec(name));
}

void copy_state(const torch::nn::Module& from, torch::nn::Module& to) {
  at::NoGradGuard no_grad;
  auto copy_all = [](const auto& source, auto target, const char* what) {
    require(source.size() == target.size(), "copy_state: {} {} vs {}", what, source.size(),
            target.size());
    for (const auto& item : source) {
      auto* dst = target.find(item.key());
      require(dst != nullptr, "copy_state: {} '{}' missing in the target", what, item.key());
      dst->copy_(item.value());
    }
  };
  copy_all(from.named_parameters(), to.named_parameters(), "parameter");
  copy_all(from.named_buffers(), to.named_buffers(), "buffer");
}

Classifier clone_model(const ClassifierImpl& model) {
  auto copy = build_model(model.spec());
  const auto params = model.parameters();
  if (!params.empty()) copy->to(params.front().device());
  quant::copy_quantization(model, *copy);
  copy_state(model, *copy);
  copy->train(model.is_training());
  return copy;
}

}  // namespace qimera::models
