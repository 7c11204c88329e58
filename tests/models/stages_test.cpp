// Stage taps (ZAQ's feature discrepancy): the output of every residual stage, for P and for Q, in
// the same forward that gives the logits.
#include "qimera/models/zoo.h"
#include "qimera/quant/convert.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>

namespace qimera::models {
namespace {

TEST(Stages, EveryArchitectureReportsItsResidualStages) {
  const std::map<std::string, std::vector<int64_t>> channels = {
      {"resnet20_cifar10", {16, 32, 64}},
      {"resnet20_cifar100", {16, 32, 64}},
      {"resnet18", {64, 128, 256, 512}},
      {"resnet50", {256, 512, 1024, 2048}},
      {"mobilenetv2_w1", {16, 24, 32, 96, 320}},
  };
  for_each_preset([&](const std::string& name, ModelSpec spec) {
    SCOPED_TRACE(name);
    spec.image_size = spec.image_size >= 64 ? 64 : spec.image_size;  // small but valid inputs
    auto model = build_model(spec);
    model->eval();
    at::NoGradGuard no_grad;
    const auto x = at::randn({2, spec.in_channels, spec.image_size, spec.image_size});
    const auto trace = model->trace(x, {false, true});
    EXPECT_TRUE(trace.batch_norms.empty());
    ASSERT_EQ(trace.stages.size(), channels.at(name).size());
    for (size_t i = 0; i < trace.stages.size(); ++i) {
      EXPECT_EQ(trace.stages[i].size(0), 2);
      EXPECT_EQ(trace.stages[i].size(1), channels.at(name)[i]);
    }
    // The taps observe the forward, they do not change it; and none are left behind.
    EXPECT_TRUE(at::equal(trace.logits, model->forward(x)));
    EXPECT_TRUE(model->trace(x).stages.empty());
  });
}

TEST(Stages, ResNetFeaturesPoolTheLastStage) {
  auto model = build_model(preset_spec("resnet20_cifar10"));
  model->eval();
  at::NoGradGuard no_grad;
  const auto x = at::randn({3, 3, 32, 32});
  const auto trace = model->trace(x, {true, true});
  EXPECT_FALSE(trace.batch_norms.empty());
  EXPECT_TRUE(at::allclose(trace.stages.back().mean({2, 3}), model->features(x)));
}

TEST(Stages, QuantizedStagesAreQuantizedActivations) {
  auto q = build_model(preset_spec("resnet20_cifar10"));
  q->eval();
  quant::convert(*q, quant::QuantConfig{});
  at::NoGradGuard no_grad;
  const auto x = at::randn({4, 3, 32, 32});
  q->forward(x);  // observe ranges
  quant::set_observing(*q, false);
  const auto stage = q->trace(x, {false, true}).stages.front();
  // A 4-bit activation takes at most 16 distinct values.
  EXPECT_LE(std::get<0>(at::_unique(stage.flatten())).numel(), 16);
}

}  // namespace
}  // namespace qimera::models
