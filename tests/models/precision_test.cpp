// AutocastScope: bfloat16 arithmetic inside, float32 outside, previous state restored, cached
// weight casts dropped at the end of a scope.
#include "qimera/models/precision.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace qimera::models {
namespace {

TEST(Precision, Bf16ScopeComputesLinearLayersInBfloat16AndRestoresFloat32) {
  at::manual_seed(3);
  const auto x = at::randn({4, 8});
  const auto w = at::randn({5, 8});
  const auto exact = at::linear(x, w);
  // What bfloat16 operands give: the products of the rounded inputs, the result rounded again.
  const auto rounded = at::linear(x.to(at::kBFloat16).to(at::kFloat), w.to(at::kBFloat16).to(at::kFloat));
  {
    AutocastScope reduced(Precision::BFloat16, c10::DeviceType::CPU);
    const auto y = at::linear(x, w);
    EXPECT_EQ(y.scalar_type(), at::kBFloat16);
    EXPECT_TRUE(at::allclose(y.to(at::kFloat), rounded, 1e-2, 1e-2));
    EXPECT_FALSE(at::equal(y.to(at::kFloat), exact));
  }
  EXPECT_FALSE(autocast_enabled(c10::DeviceType::CPU));
  EXPECT_EQ(at::linear(x, w).scalar_type(), at::kFloat);
  EXPECT_TRUE(at::equal(at::linear(x, w), exact));
}

TEST(Precision, Float32ScopeChangesNothing) {
  AutocastScope plain(Precision::Float32, c10::DeviceType::CPU);
  EXPECT_FALSE(autocast_enabled(c10::DeviceType::CPU));
  EXPECT_EQ(at::linear(at::ones({2, 3}), at::ones({4, 3})).scalar_type(), at::kFloat);
}

TEST(Precision, Float32ScopeInsideABf16OneComputesInFloat32) {
  // bf16-generator: P's float32 forward may run while G's scope is open.
  AutocastScope outer(Precision::BFloat16, c10::DeviceType::CPU);
  {
    AutocastScope plain(Precision::Float32, c10::DeviceType::CPU);
    EXPECT_FALSE(autocast_enabled(c10::DeviceType::CPU));
    EXPECT_EQ(at::linear(at::ones({2, 3}), at::ones({4, 3})).scalar_type(), at::kFloat);
  }
  EXPECT_TRUE(autocast_enabled(c10::DeviceType::CPU));
}

TEST(Precision, NestedScopesRestoreTheOuterState) {
  AutocastScope outer(Precision::BFloat16, c10::DeviceType::CPU);
  {
    AutocastScope inner(Precision::BFloat16, c10::DeviceType::CPU);
    EXPECT_TRUE(autocast_enabled(c10::DeviceType::CPU));
  }
  EXPECT_TRUE(autocast_enabled(c10::DeviceType::CPU));
  EXPECT_EQ(at::linear(at::ones({2, 3}), at::ones({4, 3})).scalar_type(), at::kBFloat16);
}

TEST(Precision, AWeightUpdatedBetweenScopesIsCastAfresh) {
  // Autocast caches the bfloat16 copy of a float32 leaf that requires gradients; a stale copy would
  // keep computing with the weight as it was before the optimizer's step.
  auto w = at::ones({2, 3}).requires_grad_(true);
  const auto x = at::ones({1, 3});
  {
    AutocastScope reduced(Precision::BFloat16, c10::DeviceType::CPU);
    EXPECT_EQ(at::linear(x, w).sum().item<float>(), 6.0f);
  }
  {
    at::NoGradGuard no_grad;
    w.mul_(2);
  }
  AutocastScope reduced(Precision::BFloat16, c10::DeviceType::CPU);
  EXPECT_EQ(at::linear(x, w).sum().item<float>(), 12.0f);
}

}  // namespace
}  // namespace qimera::models
