// The int8 engine (LibTorch's quantized operators) against the fake-quantized model.
#include "deploy/support.h"
#include "qimera/core/error.h"
#include "qimera/deploy/int8_engine.h"
#include "qimera/deploy/lower.h"
#include "qimera/deploy/quantized_model.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

namespace qimera::deploy {
namespace {

using qimera::testing::TempDir;
using namespace deploy::support;

IntegerWeight integers(const at::Tensor& w, int bits) {
  const auto range = quant::channel_range(w);
  const auto p = quant::affine_params(bits, range.lo, range.hi);
  return {bits, quant::quantize(w, p, bits), p.scale, p.zero_point};
}

ConvOp conv_op(int64_t in, int64_t out, int bits, at::Generator& gen) {
  const auto w = at::randn({out, in, 3, 3}, gen) * 0.3;
  const auto q = integers(w, bits);
  return {quant::Conv2dSpec{in, out, 3, 1, 1}, quant::dequantize(q.q, {q.scale, q.zero_point}), {}, q};
}

BatchNormOp bn_op(int64_t c, at::Generator& gen) {
  // Negative scales included: folding must flip those channels' integers.
  return {at::rand({c}, gen) * 2.0 - 0.5, at::randn({c}, gen) * 0.2, at::randn({c}, gen) * 0.2,
          at::rand({c}, gen) + 0.5, 1e-5, 0.1};
}

// image -> conv (float: it reads the image) -> BN -> ReLU -> 8-bit fake quant -> conv (integer)
// -> BN -> ReLU -> `act_bits` fake quant -> pool -> flatten -> linear
InferenceGraph two_conv_graph(int weight_bits, int act_bits, float act_hi) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
  InferenceGraph g;
  g.spec = models::ModelSpec{models::Arch::ResNet20Cifar, 4, 3, 12};
  g.preprocess = data::preprocess_preset("cifar10");
  int v = 0;
  const auto add = [&](const std::string& name, Op op) {
    g.nodes.push_back({name, std::move(op), {v}, g.num_values});
    v = g.num_values++;
  };
  add("conv1", conv_op(3, 8, 8, gen));
  add("bn1", bn_op(8, gen));
  add("act1", ActivationOp{quant::ActivationKind::ReLU});
  add("act1", FakeQuantOp{8, at::zeros({1}), at::full({1}, 3.0f)});
  add("conv2", conv_op(8, 16, weight_bits, gen));
  add("bn2", bn_op(16, gen));
  add("act2", ActivationOp{quant::ActivationKind::ReLU});
  add("act2", FakeQuantOp{act_bits, at::zeros({1}), at::full({1}, act_hi)});
  add("pool", GlobalAvgPoolOp{});
  add("flatten", FlattenOp{});
  add("output", LinearOp{at::randn({4, 16}, gen), at::zeros({4}), {}});
  g.output = v;
  return g;
}

struct GridComparison {
  double equal_share;   // elements on exactly the same grid point
  double max_steps;     // largest difference in grid steps
};

// The integer convolution's output against the reference's, both from the same (exact) input.
GridComparison compare_conv2(int weight_bits, int act_bits, float act_hi, Int8Report* report = nullptr) {
  const auto graph = two_conv_graph(weight_bits, act_bits, act_hi);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
  const auto x = at::randn({8, 3, 12, 12}, gen);
  Int8Model engine(graph, {x});
  if (report) *report = engine.report();
  const int act2 = graph.nodes[7].output;
  at::Tensor got, want;
  engine.forward(x, [&](int v, const at::Tensor& t) { if (v == act2) got = t; });
  run_reference(graph, x, [&](int v, const at::Tensor& t) { if (v == act2) want = t; });
  EXPECT_TRUE(got.defined() && want.defined());
  const double step = static_cast<double>(act_hi) / static_cast<double>((1 << act_bits) - 1);
  const auto steps = (got - want).abs() / step;
  return {steps.lt(0.01).to(at::kDouble).mean().item<double>(), steps.max().item<double>()};
}

TEST(Int8Engine, UsesOneDnnAndFoldsBatchNormWithExactSevenBitWeights) {
  Int8Report report;
  const auto c = compare_conv2(7, 8, 6.0f, &report);
  EXPECT_EQ(report.engine, "onednn");
  EXPECT_EQ(report.int8_convs, 1);
  EXPECT_EQ(report.float_convs, 2);  // the first layer and the classifier
  EXPECT_EQ(report.exact_channels, 16);
  EXPECT_EQ(report.requantized_channels, 0);
  EXPECT_EQ(report.calibrated_tensors, 0);  // both activations have learned grids
  // Same integers, same grid: only the requantization's rounding can move a value, by one step.
  EXPECT_GE(c.equal_share, 0.99);
  EXPECT_LE(c.max_steps, 1.001);
}

TEST(Int8Engine, NarrowActivationsAreClampedToTheirOwnGrid) {
  // 4-bit activations over [0, 1]: without the clamp, values above 1 would pass up to 255 steps.
  const auto c = compare_conv2(6, 4, 1.0f);
  EXPECT_GE(c.equal_share, 0.99);
  EXPECT_LE(c.max_steps, 1.001);
}

TEST(Int8Engine, EightBitWeightsAreRequantizedWhereTheyDoNotFit) {
  Int8Report report;
  const auto c = compare_conv2(8, 8, 6.0f, &report);
  EXPECT_GT(report.requantized_channels, 0);
  EXPECT_EQ(report.exact_channels + report.requantized_channels, 16);
  // Half a 127-level step per weight: most outputs stay put, none moves far.
  EXPECT_GE(c.equal_share, 0.8);
  EXPECT_LE(c.max_steps, 4.0);
}

class Int8EveryArchitecture : public ::testing::TestWithParam<std::string> {};

TEST_P(Int8EveryArchitecture, AgreesWithTheFakeQuantizedModel) {
  const auto m = test_model(GetParam());
  TempDir dir;
  const auto manifest = read_quantized_manifest(quantized_export(m, config_of(8, 8)));
  const auto calibration = data::normalize(random_images(*m.model, 8, 200), m.preprocess);
  Int8Model engine(lower_quantized(manifest), {calibration});
  const auto x = data::normalize(random_images(*m.model, 8, 201), m.preprocess);
  at::NoGradGuard no_grad;
  const auto reference = load_quantized(manifest, c10::kCPU)->forward(x);
  const auto d = deviation(engine.forward(x), reference);
  const auto& r = engine.report();
  std::printf("[ int8 ] %-18s max rel %.3g  top-1 agreement %.1f%%  %s\n", GetParam().c_str(), d.max_rel,
              100 * d.top1_agreement, r.describe().c_str());
  EXPECT_GT(r.int8_convs, 10);
  EXPECT_EQ(r.float_convs, 2);  // the first layer and the classifier
  // Calibrated grids only where the model keeps a tensor in float between integer layers: each
  // residual branch's last convolution and projection (ResNets: 9 + 2, 8 + 3), MobileNetV2's 17
  // block outputs and 10 residual sums; never the quantized activations, also not after pooling.
  const std::map<std::string, int> calibrated = {{"resnet20_cifar10", 11}, {"resnet20_cifar100", 11},
                                                 {"fmnist-resnet20", 11}, {"resnet18", 11},
                                                 {"mobilenetv2_w1", 27}};
  EXPECT_EQ(r.calibrated_tensors, calibrated.at(GetParam()));
  EXPECT_LT(d.max_rel, 0.25);
  EXPECT_GE(d.top1_agreement, 0.75);
}

// ResNet-50 adds nothing the others do not exercise (bottleneck blocks are convolutions, additions
// and ReLUs like the rest) and costs more than all of them together.
std::vector<std::string> int8_test_models() {
  auto names = test_model_names();
  names.erase(std::remove(names.begin(), names.end(), "resnet50"), names.end());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Deploy, Int8EveryArchitecture, ::testing::ValuesIn(int8_test_models()),
                         [](const auto& info) { return info.param == "fmnist-resnet20" ? std::string("teacher") : info.param; });

TEST(Int8Engine, RefusesWhatItCannotRun) {
  const auto graph = two_conv_graph(8, 8, 6.0f);
  EXPECT_THROW(Int8Model(graph, {}), Error);  // no calibration batch
}

}  // namespace
}  // namespace qimera::deploy
