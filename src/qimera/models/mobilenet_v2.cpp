#include "qimera/models/mobilenet_v2.h"

#include <ATen/ATen.h>

namespace qimera::models {
namespace {

constexpr auto kReLU6 = quant::ActivationKind::ReLU6;
constexpr int64_t kExpansion = 6;

// pytorchcv's LinearBottleneck: 1x1 expansion (kept even without expansion), 3x3 depthwise,
// 1x1 linear projection; residual when the shape is unchanged.
class LinearBottleneckImpl : public torch::nn::Module {
 public:
  LinearBottleneckImpl(int64_t in, int64_t out, int64_t stride, bool expansion)
      : residual_(in == out && stride == 1) {
    const int64_t mid = expansion ? in * kExpansion : in;
    conv1_ = register_module("conv1", conv1x1_block(in, mid, 1, kReLU6));
    conv2_ = register_module("conv2", dwconv3x3_block(mid, stride, kReLU6));
    conv3_ = register_module("conv3", conv1x1_block(mid, out, 1, std::nullopt));
  }
  at::Tensor forward(const at::Tensor& x) {
    auto y = conv3_->forward(conv2_->forward(conv1_->forward(x)));
    return residual_ ? y + x : y;
  }

 private:
  bool residual_;
  ConvBlock conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
};
TORCH_MODULE(LinearBottleneck);

// pytorchcv groups the per-layer channels into stages, starting a new stage at each downsampling.
const std::vector<std::vector<int64_t>>& stage_channels() {
  static const std::vector<std::vector<int64_t>> stages = {
      {16}, {24, 24}, {32, 32, 32}, {64, 64, 64, 64, 96, 96, 96}, {160, 160, 160, 320}};
  return stages;
}

constexpr int64_t kInitChannels = 32;
constexpr int64_t kFinalChannels = 1280;

}  // namespace

MobileNetV2Impl::MobileNetV2Impl(const ModelSpec& spec) : ClassifierImpl(spec) {
  spec.validate();
  features_ = register_module("features", Stack());
  features_->add("init_block", conv3x3_block(spec.in_channels, kInitChannels, 2, kReLU6));
  int64_t in = kInitChannels;
  const auto& stages = stage_channels();
  for (size_t i = 0; i < stages.size(); ++i) {
    Stack stage;
    for (size_t j = 0; j < stages[i].size(); ++j) {
      const int64_t stride = (j == 0 && i != 0) ? 2 : 1;
      const bool expansion = i != 0 || j != 0;
      stage->add(fmt::format("unit{}", j + 1),
                       LinearBottleneck(in, stages[i][j], stride, expansion));
      in = stages[i][j];
    }
    features_->add(fmt::format("stage{}", i + 1), stage);
  }
  features_->add("final_block", conv1x1_block(in, kFinalChannels, 1, kReLU6));
  output_ = register_module(
      "output", quant::QuantConv2d(quant::Conv2dSpec{kFinalChannels, spec.num_classes, 1}));
}

at::Tensor MobileNetV2Impl::features(const at::Tensor& x) {
  return at::adaptive_avg_pool2d(run_stages(*features_, x), {1, 1}).flatten(1);
}

at::Tensor MobileNetV2Impl::classify(const at::Tensor& features) {
  return output_->forward(features.unsqueeze(-1).unsqueeze(-1)).flatten(1);
}

at::Tensor MobileNetV2Impl::classifier_weight() const { return output_->weight.flatten(1); }

}  // namespace qimera::models
