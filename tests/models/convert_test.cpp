// The conversion pass on every zoo architecture.
#include "qimera/core/error.h"
#include "qimera/models/zoo.h"
#include "qimera/quant/convert.h"
#include "qimera/quant/layers.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace qimera::models {
namespace {

using quant::QuantConfig;

// Small inputs keep the ImageNet models fast; the layer structure does not depend on the size.
ModelSpec small(ModelSpec spec) {
  spec.image_size = spec.arch == Arch::ResNet20Cifar ? 16 : 32;
  spec.num_classes = 10;
  return spec;
}

struct Counts {
  int conv = 0, linear = 0, act = 0;
};

Counts count_layers(const torch::nn::Module& m) {
  Counts c;
  for (const auto& sub : m.modules()) {
    if (std::dynamic_pointer_cast<quant::QuantConv2dImpl>(sub)) ++c.conv;
    if (std::dynamic_pointer_cast<quant::QuantLinearImpl>(sub)) ++c.linear;
    if (std::dynamic_pointer_cast<quant::QuantActImpl>(sub)) ++c.act;
  }
  return c;
}

TEST(Convert, EveryWeightLayerAndEveryActivationIsQuantized) {
  for_each_preset([](const std::string& name, const ModelSpec& spec) {
    auto q = build_model(small(spec));
    const auto counts = count_layers(*q);
    const auto report = quant::convert(*q, QuantConfig{});
    int weights = 0, acts = 0;
    for (const auto& layer : report) {
      EXPECT_EQ(layer.bits, 4) << name << " " << layer.name;
      (layer.kind == "act" ? acts : weights) += 1;
    }
    EXPECT_EQ(weights, counts.conv + counts.linear) << name;
    EXPECT_EQ(acts, counts.act) << name;
  });
}

TEST(Convert, ResNet20HasTheExpectedQuantizers) {
  auto q = build_model(preset_spec("resnet20_cifar10"));
  const auto report = quant::convert(*q, QuantConfig{});
  int conv = 0, linear = 0, act = 0;
  for (const auto& l : report) {
    conv += l.kind == "conv";
    linear += l.kind == "linear";
    act += l.kind == "act";
  }
  EXPECT_EQ(conv, 21);    // 1 stem + 9 units x 2 + 2 projections
  EXPECT_EQ(linear, 1);
  EXPECT_EQ(act, 19);     // stem + 9 units x (inner ReLU + output ReLU)
  EXPECT_EQ(report.front().name, "features.init_block.conv");
  EXPECT_EQ(report.back().name, "output");
}

TEST(Convert, DisabledQuantizersGiveBitIdenticalOutputs) {
  for_each_preset([](const std::string& name, const ModelSpec& spec) {
    auto p = build_model(small(spec));
    p->eval();
    auto q = clone_model(*p);
    quant::convert(*q, QuantConfig{});
    const auto x = at::randn({2, spec.in_channels, small(spec).image_size, small(spec).image_size});
    at::NoGradGuard no_grad;
    const auto reference = p->forward(x);
    EXPECT_FALSE(at::equal(q->forward(x), reference)) << name << ": quantization changed nothing";
    quant::set_quantization_enabled(*q, false);
    EXPECT_TRUE(at::equal(q->forward(x), reference)) << name;
  });
}

TEST(Convert, OverridesByPatternAndAlias) {
  auto q = build_model(preset_spec("resnet20_cifar10"));
  QuantConfig config;
  config.overrides = {quant::parse_layer_override("@first=8"), quant::parse_layer_override("@last=8"),
                      quant::parse_layer_override("features.stage3.*=float"),
                      quant::parse_layer_override("features.stage2.unit1.activ=4x6")};
  const auto report = quant::convert(*q, config);
  for (const auto& l : report) {
    if (l.name == "features.init_block.conv" || l.name == "output") {
      EXPECT_EQ(l.bits, 8) << l.name;
    } else if (l.name.rfind("features.stage3.", 0) == 0) {
      EXPECT_EQ(l.bits, 0) << l.name;
    } else if (l.name == "features.stage2.unit1.activ") {
      EXPECT_EQ(l.bits, 6);
    } else {
      EXPECT_EQ(l.bits, 4) << l.name;
    }
  }
  EXPECT_EQ(quant::describe_quantization(*q).size(), report.size());
}

TEST(Convert, OverrideThatMatchesNothingIsAnError) {
  auto q = build_model(preset_spec("resnet20_cifar10"));
  QuantConfig config;
  config.overrides = {quant::parse_layer_override("feature.stage1.*=8")};
  EXPECT_THROW(quant::convert(*q, config), Error);
}

TEST(Convert, ParsesOverrides) {
  const auto o = quant::parse_layer_override("a.b*=4x8");
  EXPECT_EQ(o.pattern, "a.b*");
  EXPECT_EQ(*o.weight_bits, 4);
  EXPECT_EQ(*o.act_bits, 8);
  EXPECT_EQ(*quant::parse_layer_override("x=float").weight_bits, 0);
  EXPECT_THROW(quant::parse_layer_override("x=9"), Error);
  EXPECT_THROW(quant::parse_layer_override("x=4y4"), Error);
  EXPECT_THROW(quant::parse_layer_override("noequals"), Error);
}

TEST(Convert, ObserverStateIsSavedWithTheModelAndCloned) {
  auto p = build_model(small(preset_spec("resnet20_cifar10")));
  p->eval();
  auto q = clone_model(*p);
  quant::convert(*q, QuantConfig{});
  const auto buffers = q->named_buffers();
  EXPECT_TRUE(buffers.contains("features.init_block.activ.observer_lo"));
  EXPECT_TRUE(buffers.contains("features.stage1.unit1.activ.observer_aux"));
  const auto x = at::randn({4, 3, 16, 16});
  at::NoGradGuard no_grad;
  q->forward(x);  // observes
  quant::set_observing(*q, false);
  auto copy = clone_model(*q);
  EXPECT_TRUE(at::equal(copy->forward(x), q->forward(x)));
  EXPECT_TRUE(at::equal(copy->named_buffers()["features.init_block.activ.observer_hi"],
                        buffers["features.init_block.activ.observer_hi"]));
}

}  // namespace
}  // namespace qimera::models
