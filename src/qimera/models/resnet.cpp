#include "qimera/models/resnet.h"

#include "qimera/core/error.h"
#include "qimera/models/res_unit.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/pooling.h>

namespace qimera::models {
namespace {

struct ResNetLayout {
  std::vector<int64_t> units_per_stage;
  std::vector<int64_t> channels;
  int64_t init_channels;
  bool bottleneck;
  bool imagenet_stem;  // 7x7 stride-2 conv + 3x3 max pool (ImageNet) vs one 3x3 conv (CIFAR)
};

ResNetLayout layout_of(Arch arch) {
  switch (arch) {
    case Arch::ResNet20Cifar: return {{3, 3, 3}, {16, 32, 64}, 16, false, false};
    case Arch::ResNet18: return {{2, 2, 2, 2}, {64, 128, 256, 512}, 64, false, true};
    case Arch::ResNet50: return {{3, 4, 6, 3}, {256, 512, 1024, 2048}, 64, true, true};
    default: fail("{} is not a ResNet", to_string(arch));
  }
}

// pytorchcv's ResInitBlock: "conv" (7x7 block, stride 2) then "pool".
class ResInitBlockImpl : public torch::nn::Module {
 public:
  ResInitBlockImpl(int64_t in, int64_t out) {
    conv_ = register_module("conv", ConvBlock(ConvBlockSpec{in, out, 7, 2, 3}));
  }
  at::Tensor forward(const at::Tensor& x) { return at::max_pool2d(conv_->forward(x), 3, 2, 1); }

 private:
  ConvBlock conv_{nullptr};
};
TORCH_MODULE(ResInitBlock);

}  // namespace

ResNetImpl::ResNetImpl(const ModelSpec& spec) : ClassifierImpl(spec) {
  spec.validate();
  const auto layout = layout_of(spec.arch);
  features_ = register_module("features", Stack());
  if (layout.imagenet_stem) {
    features_->add("init_block", ResInitBlock(spec.in_channels, layout.init_channels));
  } else {
    features_->add("init_block", conv3x3_block(spec.in_channels, layout.init_channels));
  }
  int64_t in = layout.init_channels;
  for (size_t i = 0; i < layout.channels.size(); ++i) {
    Stack stage;
    for (int64_t j = 0; j < layout.units_per_stage[i]; ++j) {
      const int64_t stride = (j == 0 && i != 0) ? 2 : 1;
      stage->add(fmt::format("unit{}", j + 1),
                       ResUnit(ResUnitSpec{in, layout.channels[i], stride, layout.bottleneck, true}));
      in = layout.channels[i];
    }
    features_->add(fmt::format("stage{}", i + 1), stage);
  }
  output_ = register_module("output", quant::QuantLinear(in, spec.num_classes));
}

at::Tensor ResNetImpl::features(const at::Tensor& x) {
  // pytorchcv pools with a fixed 8x8 (CIFAR) / 7x7 (ImageNet) window; for the standard input sizes
  // that is the global average, which also serves other sizes (e.g. 28x28 Fashion-MNIST).
  return at::adaptive_avg_pool2d(run_stages(*features_, x), {1, 1}).flatten(1);
}

at::Tensor ResNetImpl::classify(const at::Tensor& features) { return output_->forward(features); }

at::Tensor ResNetImpl::classifier_weight() const { return output_->weight; }

}  // namespace qimera::models
