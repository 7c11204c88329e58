// Mixup and Cutmix over a batch: exact values, label weights, box areas and lambda's distribution.
#include "qimera/core/error.h"
#include "qimera/generator/mixing.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

namespace qimera::generator {
namespace {

at::Tensor one_hot(std::vector<int64_t> labels, int64_t classes) {
  return at::one_hot(at::tensor(labels), classes).to(at::kFloat);
}

TEST(Cutmix, BoxIsTheReferencesBox) {
  // 32 x 32, lambda 0.75: side ratio 0.5, cut 16, 8 on each side of the centre.
  const auto b = cutmix_box(32, 32, 0.75, 10, 20);
  EXPECT_EQ(b.top, 2);
  EXPECT_EQ(b.bottom, 18);
  EXPECT_EQ(b.left, 12);
  EXPECT_EQ(b.right, 28);
  EXPECT_EQ(b.area(), 256);
  // Clipped at the borders.
  const auto c = cutmix_box(32, 32, 0.75, 0, 31);
  EXPECT_EQ(c.top, 0);
  EXPECT_EQ(c.bottom, 8);
  EXPECT_EQ(c.left, 23);
  EXPECT_EQ(c.right, 32);
  // lambda 1: no box; lambda 0: the whole image from the centre.
  EXPECT_EQ(cutmix_box(32, 32, 1.0, 5, 5).area(), 0);
  EXPECT_EQ(cutmix_box(32, 32, 0.0, 16, 16).area(), 32 * 32);
  // An odd cut loses a pixel, as the reference's cut // 2 does: 28 x 0.5 = 14 -> 7; 27 * 0.5 = 13.5 -> 13 -> 6.
  EXPECT_EQ(cutmix_box(27, 28, 0.75, 13, 14).bottom - cutmix_box(27, 28, 0.75, 13, 14).top, 12);
  EXPECT_EQ(cutmix_box(27, 28, 0.75, 13, 14).right - cutmix_box(27, 28, 0.75, 13, 14).left, 14);
  EXPECT_THROW(cutmix_box(32, 32, 1.5, 0, 0), Error);
}

TEST(Cutmix, PastesThePartnersBoxAndWeighsLabelsByItsArea) {
  const auto images = at::arange(3 * 2 * 6 * 6, at::kFloat).view({3, 2, 6, 6}).requires_grad_(true);
  const auto targets = one_hot({0, 1, 2}, 4);
  const auto perm = at::tensor(std::vector<int64_t>{2, 0, 1});
  const Box box{1, 4, 2, 4};  // 3 x 2 = 6 of 36 pixels
  const auto m = cutmix(images, targets, perm, box);
  EXPECT_DOUBLE_EQ(m.lambda, 1.0 - 6.0 / 36.0);
  for (int64_t i = 0; i < 3; ++i) {
    const auto partner = images[perm[i].item<int64_t>()];
    for (int64_t y = 0; y < 6; ++y) {
      for (int64_t x = 0; x < 6; ++x) {
        const bool inside = y >= 1 && y < 4 && x >= 2 && x < 4;
        const auto want = inside ? partner.select(1, y).select(1, x) : images[i].select(1, y).select(1, x);
        EXPECT_TRUE(at::equal(m.images[i].select(1, y).select(1, x), want)) << i << " " << y << " " << x;
      }
    }
  }
  const auto want_targets = m.lambda * targets + (1 - m.lambda) * targets.index_select(0, perm);
  EXPECT_TRUE(at::allclose(m.targets, want_targets));
  EXPECT_NEAR(m.targets.sum(1).sub(1).abs().max().item<double>(), 0, 1e-6);
  // Gradients reach every source pixel exactly once.
  m.images.sum().backward();
  EXPECT_TRUE(at::equal(images.grad(), at::ones_like(images)));
}

TEST(Mixup, BlendsImagesAndLabelsWithOneLambda) {
  const auto images = at::randn({4, 1, 3, 3});
  const auto targets = one_hot({0, 1, 2, 3}, 4);
  const auto perm = at::tensor(std::vector<int64_t>{1, 0, 3, 2});
  const auto m = mixup(images, targets, perm, 0.3);
  EXPECT_TRUE(at::allclose(m.images, 0.3 * images + 0.7 * images.index_select(0, perm)));
  EXPECT_NEAR(m.targets[0][0].item<double>(), 0.3, 1e-7);
  EXPECT_NEAR(m.targets[0][1].item<double>(), 0.7, 1e-7);
  EXPECT_TRUE(at::equal(mixup(images, targets, perm, 1.0).images, images));
  EXPECT_THROW(mixup(images, targets, at::tensor(std::vector<int64_t>{0, 1}), 0.5), Error);
}

TEST(Mixing, LambdaFollowsBetaAlphaAlpha) {
  at::manual_seed(3);
  for (double alpha : {1.0, 0.4}) {
    constexpr int kDraws = 20000;
    double sum = 0, sum_sq = 0;
    for (int i = 0; i < kDraws; ++i) {
      const double l = sample_beta(alpha);
      ASSERT_GE(l, 0.0);
      ASSERT_LE(l, 1.0);
      sum += l;
      sum_sq += l * l;
    }
    const double mean = sum / kDraws, var = sum_sq / kDraws - mean * mean;
    const double want_var = 1.0 / (4.0 * (2.0 * alpha + 1.0));  // Beta(a, a)
    EXPECT_NEAR(mean, 0.5, 4 * std::sqrt(want_var / kDraws)) << alpha;
    EXPECT_NEAR(var, want_var, 0.05 * want_var) << alpha;
  }
  EXPECT_THROW(sample_beta(0), Error);
}

TEST(Mixing, SampledMixesAreReproducibleAndKeepLabelMass) {
  const auto images = at::randn({8, 3, 8, 8});
  const auto targets = one_hot({0, 1, 2, 3, 4, 5, 6, 7}, 8);
  for (auto kind : {MixKind::Mixup, MixKind::Cutmix}) {
    at::manual_seed(11);
    const auto a = sample_mix(kind, images, targets, 1.0);
    at::manual_seed(11);
    const auto b = sample_mix(kind, images, targets, 1.0);
    EXPECT_TRUE(at::equal(a.images, b.images));
    EXPECT_NEAR(a.targets.sum().item<double>(), 8.0, 1e-5);
    // Each row's weight on its own label is lambda (or 1 when the partner is itself).
    for (int64_t i = 0; i < 8; ++i) EXPECT_GE(a.targets[i][i].item<double>(), a.lambda - 1e-6);
  }
}

}  // namespace
}  // namespace qimera::generator
