// The zoo against pytorchcv: state-dict names/shapes, and logits plus per-batch-norm input statistics
// computed by PyTorch for formula-filled weights (tests/fixtures/README.md).
#include "qimera/core/error.h"
#include "qimera/models/zoo.h"
#include "qimera/quant/convert.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>


namespace qimera::models {
namespace {

using testing::fill_by_formula;
using testing::KeyEntry;

std::vector<KeyEntry> read_keys(const std::string& model) { return testing::read_pytorchcv_keys(model); }

std::map<std::string, at::Tensor> named_state(const torch::nn::Module& m) {
  std::map<std::string, at::Tensor> state;
  for (const auto& p : m.named_parameters()) state[p.key()] = p.value();
  for (const auto& b : m.named_buffers()) state[b.key()] = b.value();
  return state;
}

class ZooParity : public ::testing::TestWithParam<std::string> {};

TEST_P(ZooParity, StateDictMatchesPytorchcv) {
  const auto name = GetParam();
  auto model = build_model(preset_spec(name));
  const auto keys = read_keys(name);
  const auto state = named_state(*model);
  ASSERT_EQ(state.size(), keys.size()) << "our model has a different number of entries";
  for (const auto& key : keys) {
    ASSERT_TRUE(state.count(key.name)) << "missing " << key.name;
    const auto& t = state.at(key.name);
    EXPECT_EQ(t.sizes().vec(), key.shape) << key.name;
    EXPECT_EQ(key.dtype == "int64", t.scalar_type() == at::kLong) << key.name;
  }
}

TEST_P(ZooParity, LogitsAndBatchNormStatisticsMatchPyTorch) {
  const auto name = GetParam();
  const auto& expected = testing::parity().at(name);
  auto model = build_model(preset_spec(name));
  fill_by_formula(*model, read_keys(name));
  model->eval();
  const auto shape = expected.at("input_shape").get<std::vector<int64_t>>();
  const auto input = testing::sine_tensor(shape, 0.3, 0.007);
  at::NoGradGuard no_grad;
  const auto trace = model->trace(input);

  const auto want = testing::json_tensor(expected.at("logits"));
  ASSERT_EQ(trace.logits.sizes(), want.sizes());
  const double scale = want.abs().max().item<double>();
  const double err = (trace.logits - want).abs().max().item<double>();
  EXPECT_LE(err, 1e-4 * scale) << name << ": max logit error " << err << " (scale " << scale << ")";

  const auto means = expected.at("bn_input_mean_of_channel_means").get<std::vector<double>>();
  const auto vars = expected.at("bn_input_mean_of_channel_vars").get<std::vector<double>>();
  ASSERT_EQ(static_cast<int64_t>(trace.batch_norms.size()), expected.at("bn_layers").get<int64_t>());
  for (size_t i = 0; i < trace.batch_norms.size(); ++i) {
    const auto& x = trace.batch_norms[i].input;
    const double mean = x.mean({0, 2, 3}).mean().item<double>();
    const double var = x.var({0, 2, 3}, /*unbiased=*/false).mean().item<double>();
    // The fixture prints 6 decimals.
    EXPECT_NEAR(mean, means[i], 1e-6 + 1e-4 * std::abs(means[i])) << name << " batch norm " << i;
    EXPECT_NEAR(var, vars[i], 1e-6 + 1e-4 * std::abs(vars[i])) << name << " batch norm " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Presets, ZooParity,
                         ::testing::Values("resnet20_cifar10", "resnet20_cifar100", "resnet18",
                                           "resnet50", "mobilenetv2_w1"));

TEST(Zoo, EveryPresetHasFeaturesAndClassifierWeight) {
  for_each_preset([](const std::string& name, const ModelSpec& spec) {
    auto model = build_model(spec);
    const auto w = model->classifier_weight();
    EXPECT_EQ(w.dim(), 2) << name;
    EXPECT_EQ(w.size(0), spec.num_classes) << name;
    const int64_t expected_dim = spec.arch == Arch::ResNet20Cifar ? 64
                                 : spec.arch == Arch::ResNet18    ? 512
                                 : spec.arch == Arch::ResNet50    ? 2048
                                                                  : 1280;
    EXPECT_EQ(model->feature_dim(), expected_dim) << name;
  });
}

TEST(Zoo, ConfigurableCifarResNet) {
  ModelSpec spec{Arch::ResNet20Cifar, 10, 1, 28};
  auto model = build_model(spec);
  model->eval();
  const auto x = at::randn({2, 1, 28, 28});
  const auto features = model->features(x);
  EXPECT_EQ(features.sizes(), (std::vector<int64_t>{2, 64}));
  EXPECT_EQ(model->forward(x).sizes(), (std::vector<int64_t>{2, 10}));
  EXPECT_TRUE(at::allclose(model->classify(features), model->forward(x)));
}

TEST(Zoo, TraceRecordsBatchNormInputsWithGradients) {
  auto model = build_model(ModelSpec{Arch::ResNet20Cifar, 10, 3, 16});
  model->eval();
  auto x = at::randn({2, 3, 16, 16}).requires_grad_(true);
  auto trace = model->trace(x);
  ASSERT_EQ(trace.batch_norms.size(), 21u);
  // The first recorded input is the output of the first convolution: a function of x.
  trace.batch_norms[0].input.sum().backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0.0);
  // Tracing leaves no sink behind: a plain forward records nothing new.
  const auto again = model->trace(x.detach());
  EXPECT_EQ(again.batch_norms.size(), 21u);
  EXPECT_EQ(trace.batch_norms[0].layer, model->batch_norms()[0].get());
}

TEST(Zoo, CloneIsAnIndependentExactCopy) {
  auto model = build_model(ModelSpec{Arch::ResNet20Cifar, 10, 3, 16});
  model->eval();
  auto copy = clone_model(*model);
  const auto x = at::randn({2, 3, 16, 16});
  EXPECT_TRUE(at::equal(model->forward(x), copy->forward(x)));
  EXPECT_FALSE(copy->is_training());
  {
    at::NoGradGuard no_grad;
    copy->named_parameters()["output.weight"].add_(1.0);
  }
  EXPECT_FALSE(at::equal(model->forward(x), copy->forward(x)));
}

TEST(Zoo, UnknownNamesAreClearErrors) {
  EXPECT_THROW(preset_spec("resnet21"), Error);
  EXPECT_THROW(parse_arch("vgg16"), Error);
  EXPECT_THROW(build_model(ModelSpec{Arch::ResNet18, 1, 3, 224}), Error);
}

TEST(Zoo, SpecJsonRoundTrip) {
  const ModelSpec spec{Arch::MobileNetV2, 7, 1, 64};
  EXPECT_EQ(ModelSpec::from_json(spec.to_json()), spec);
  EXPECT_THROW(ModelSpec::from_json(nlohmann::json{{"arch", "resnet18"}}), Error);
}

}  // namespace
}  // namespace qimera::models
