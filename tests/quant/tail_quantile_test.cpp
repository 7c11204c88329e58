#include "qimera/core/error.h"
#include "qimera/quant/tail_quantile.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace qimera::quant {
namespace {

void expect_same_as_aten(const at::Tensor& values, double q) {
  const auto expected = at::quantile(values, q);
  const auto got = tail_quantile(values, q);
  EXPECT_EQ(got.sizes(), expected.sizes());
  EXPECT_EQ(got.item<float>(), expected.item<float>()) << "n " << values.numel() << " q " << q;
}

TEST(TailQuantile, BitIdenticalToAtenQuantile) {
  at::manual_seed(3);
  const auto relu = at::relu(at::randn({100003}));              // many ties at 0
  const auto rounded = at::round(at::randn({50000}) * 4) / 4;   // ties everywhere
  const auto wide = at::randn({200000}).exp();                  // long upper tail
  for (const auto& values : {relu, rounded, wide}) {
    for (double q : {0.0, 1e-4, 0.001, 0.01, 0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
      expect_same_as_aten(values, q);  // 0.5 and 0.9 take the full-sort fallback
    }
  }
  expect_same_as_aten(at::tensor({7.0f}), 0.9999);
  expect_same_as_aten(at::tensor({1.0f, -2.0f}), 0.9999);
}

TEST(TailQuantile, HandComputedInterpolation) {
  // 0..100 shuffled: the 0.995 quantile sits at rank 99.5, halfway between 99 and 100.
  const auto values = at::randperm(101, at::kFloat);
  EXPECT_FLOAT_EQ(tail_quantile(values, 0.995).item<float>(), 99.5f);
  EXPECT_FLOAT_EQ(tail_quantile(values, 0.005).item<float>(), 0.5f);
  EXPECT_FLOAT_EQ(tail_quantile(values, 1.0).item<float>(), 100.0f);
}

TEST(TailQuantile, RejectsBadArguments) {
  EXPECT_THROW(tail_quantile(at::empty({0}), 0.9), Error);
  EXPECT_THROW(tail_quantile(at::ones({2, 2}), 0.9), Error);
  EXPECT_THROW(tail_quantile(at::ones({4}), 1.5), Error);
}

}  // namespace
}  // namespace qimera::quant
