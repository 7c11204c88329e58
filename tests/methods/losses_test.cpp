#include "qimera/methods/losses.h"
#include "qimera/models/zoo.h"
#include "support/test_support.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

namespace qimera::methods {
namespace {

const nlohmann::json& fixture_losses() { return testing::parity()["losses"]; }

at::Tensor student_logits() { return testing::sine_tensor({4, 10}, 0.3, 0.007, 5.0); }

at::Tensor teacher_logits() {
  auto j = at::arange(40, at::kDouble);
  return (4 * at::cos(0.9 * j)).to(at::kFloat).reshape({4, 10});
}

TEST(Losses, SoftCrossEntropyMatchesPyTorch) {
  const auto targets = testing::json_tensor(fixture_losses()["soft_targets"]);
  EXPECT_NEAR(soft_cross_entropy(student_logits(), targets).item<double>(),
              fixture_losses()["ce_soft"].get<double>(), 1e-5);
}

TEST(Losses, KnowledgeDistillationMatchesPyTorch) {
  EXPECT_NEAR(kd_loss(student_logits(), teacher_logits(), 20.0, 1.0).item<double>(),
              fixture_losses()["kd_T20_alpha1_elementmean_times_T2"].get<double>(), 1e-5);
  const auto targets = testing::json_tensor(fixture_losses()["soft_targets"]);
  EXPECT_NEAR((kd_loss(student_logits(), teacher_logits(), 20.0, 1.0) + soft_cross_entropy(student_logits(), targets))
                  .item<double>(),
              fixture_losses()["kd_plus_ce_soft (L_Q)"].get<double>(), 1e-5);
}

TEST(Losses, HandComputedValues) {
  // Two classes, logits (0, ln 3): softmax = (1/4, 3/4). Target (0, 1): CE = -ln(3/4).
  const auto logits = at::tensor({0.0f, static_cast<float>(std::log(3.0))}).reshape({1, 2});
  EXPECT_NEAR(soft_cross_entropy(logits, at::tensor({0.0f, 1.0f}).reshape({1, 2})).item<double>(),
              -std::log(0.75), 1e-6);
  // Soft target (1/2, 1/2): CE = -(ln(1/4) + ln(3/4)) / 2.
  EXPECT_NEAR(soft_cross_entropy(logits, at::full({1, 2}, 0.5f)).item<double>(),
              -(std::log(0.25) + std::log(0.75)) / 2, 1e-6);
  // KD, T = 1: KL(p || q) with p = softmax(teacher), q = softmax(student), averaged over 2 elements.
  const auto t = at::tensor({static_cast<float>(std::log(3.0)), 0.0f}).reshape({1, 2});
  const double kl = 0.75 * std::log(0.75 / 0.25) + 0.25 * std::log(0.25 / 0.75);
  EXPECT_NEAR(kd_loss(logits, t, 1.0, 1.0).item<double>(), kl / 2, 1e-6);
  // Temperature scales logits and multiplies by T^2 * alpha.
  EXPECT_NEAR(kd_loss(logits * 2, t * 2, 2.0, 0.5).item<double>(), kl / 2 * 4 * 0.5, 1e-6);
  // Identical logits: zero up to float32 rounding magnified by T^2 = 400.
  EXPECT_NEAR(kd_loss(logits, logits, 20.0, 1.0).item<double>(), 0.0, 1e-4);
}

TEST(Losses, BnsHandComputed) {
  // One layer, 2 channels. Channel 0 values {1, 3}: mean 2, biased var 1. Channel 1 {0, 0}.
  models::TappedBatchNorm2d bn(2);
  {
    at::NoGradGuard no_grad;
    bn->running_mean.copy_(at::tensor({1.0f, 0.5f}));
    bn->running_var.copy_(at::tensor({2.0f, 1.0f}));
  }
  auto x = at::tensor({1.0f, 0.0f, 3.0f, 0.0f}).reshape({2, 2, 1, 1});
  std::vector<models::BnObservation> obs{{x, bn.get()}};
  // Mean MSE: ((2-1)^2 + (0-0.5)^2)/2 = 0.625; var MSE: ((1-2)^2 + (0-1)^2)/2 = 1.
  EXPECT_NEAR(bns_loss(obs).item<double>(), 1.625, 1e-6);
  // Two identical layers average to the same value.
  obs.push_back(obs[0]);
  EXPECT_NEAR(bns_loss(obs).item<double>(), 1.625, 1e-6);
}

TEST(Losses, BnsOfTheFixtureModelMatchesPyTorch) {
  // resnet20_cifar10 with formula weights (tests/fixtures/README.md).
  auto model = models::build_model(models::preset_spec("resnet20_cifar10"));
  testing::fill_by_formula(*model, testing::read_pytorchcv_keys("resnet20_cifar10"));
  at::NoGradGuard no_grad;
  model->eval();
  const auto trace = model->trace(testing::sine_tensor({2, 3, 32, 32}, 0.3, 0.007));
  const double want = fixture_losses()["bns_resnet20_cifar10_fixture"].get<double>();
  EXPECT_NEAR(bns_loss(trace.batch_norms).item<double>(), want, 1e-4 * want);
}

TEST(Losses, BnsGradientReachesTheInput) {
  auto model = models::build_model(models::ModelSpec{models::Arch::ResNet20Cifar, 10, 3, 16});
  model->eval();
  auto x = at::randn({4, 3, 16, 16}).requires_grad_(true);
  bns_loss(model->trace(x).batch_norms).backward();
  EXPECT_GT(x.grad().abs().sum().item<double>(), 0.0);
}

TEST(Losses, AgreementCountsMatchingArgmax) {
  const auto logits = at::tensor({1.0f, 2.0f, 5.0f, 0.0f}).reshape({2, 2});
  const auto targets = at::tensor({0.2f, 0.8f, 0.3f, 0.7f}).reshape({2, 2});
  EXPECT_FLOAT_EQ(agreement(logits, targets).item<float>(), 0.5f);
}

}  // namespace
}  // namespace qimera::methods
