#include "qimera/eval/agreement.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <vector>

namespace qimera::eval {
namespace {

// Image i is a [1, 1, 1] tensor holding i; a "model" maps it to logits by a lookup table.
at::Tensor numbered_images(int64_t n) { return at::arange(n, at::kFloat).reshape({n, 1, 1, 1}); }

Forward lookup(at::Tensor table) {
  return [table](const at::Tensor& x) { return table.index_select(0, x.flatten().round().to(at::kLong)); };
}

// 6 images, 3 classes. The reference picks classes 0, 0, 1, 1, 1, 2; the model agrees on images
// 0, 2, 3 and 5 (4 of 6): class 0 1 of 2, class 1 2 of 3, class 2 1 of 1.
at::Tensor reference_logits() {
  return at::tensor(std::vector<float>{2, 0, 0, 2, 0, 0, 0, 2, 0, 0, 2, 0, 0, 2, 0, 0, 0, 2}).reshape({6, 3});
}
at::Tensor model_logits() {
  return at::tensor(std::vector<float>{1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1}).reshape({6, 3});
}

TEST(Agreement, CountsPerClassAsTheReferencePicks) {
  for (int64_t batch : {1, 4, 6, 100}) {
    const auto reference = logits_of(lookup(reference_logits()), numbered_images(6), batch);
    EXPECT_TRUE(reference.equal(reference_logits())) << batch;  // every batch, in order
    const auto a = compare_logits(reference, logits_of(lookup(model_logits()), numbered_images(6), batch));
    EXPECT_EQ(a.images, 6);
    EXPECT_DOUBLE_EQ(a.top1, 100.0 * 4 / 6) << batch;
    EXPECT_EQ(a.class_images, (std::vector<int64_t>{2, 3, 1}));
    EXPECT_EQ(a.class_agreed, (std::vector<int64_t>{1, 2, 1}));
    EXPECT_EQ(a.classes_seen(), 3);
    EXPECT_EQ(a.worst_class(), 0);
    EXPECT_DOUBLE_EQ(a.class_top1(1), 100.0 * 2 / 3);
    // KL(p || q) per image by hand: p = softmax(2, 0, 0), q = softmax(1, 0, 0) on an agreeing
    // image; q with its 1 on another class on a disagreeing one.
    const double zp = std::exp(2.0) + 2, zq = std::exp(1.0) + 2;
    const double p1 = std::exp(2.0) / zp, p0 = 1 / zp;
    const double same = p1 * (std::log(p1) - std::log(std::exp(1.0) / zq)) + 2 * p0 * (std::log(p0) - std::log(1 / zq));
    const double other = p1 * (std::log(p1) - std::log(1 / zq)) + p0 * (std::log(p0) - std::log(std::exp(1.0) / zq)) +
                         p0 * (std::log(p0) - std::log(1 / zq));
    EXPECT_NEAR(a.kl, (4 * same + 2 * other) / 6, 1e-6) << batch;
  }
}

TEST(Agreement, AModelAgreesWithItselfEverywhere) {
  const auto five = at::cat({reference_logits(), at::zeros({6, 2})}, 1);  // classes 3, 4 never picked
  const auto a = compare_logits(five, logits_of(lookup(five), numbered_images(6), 4));
  EXPECT_DOUBLE_EQ(a.top1, 100.0);
  EXPECT_NEAR(a.kl, 0.0, 1e-7);
  EXPECT_EQ(a.classes_seen(), 3);  // of 5: classes 3 and 4 have no image
  EXPECT_TRUE(std::isnan(a.class_top1(4)));
  const auto j = a.to_json();
  EXPECT_EQ(j["per_class"].size(), 5u);
  EXPECT_EQ(j["worst_class"]["class"], 0);  // every class at 100: the first
}

TEST(Agreement, TopOneAgainstLabels) {
  const auto labels = at::tensor(std::vector<int64_t>{0, 1, 1, 0, 1, 2});
  EXPECT_DOUBLE_EQ(top1(reference_logits(), labels), 100.0 * 4 / 6);
  EXPECT_THROW(top1(reference_logits(), labels.slice(0, 0, 5)), Error);
}

TEST(Agreement, MismatchedLogitsAreAnError) {
  const auto wide = at::zeros({6, 4});
  EXPECT_THROW(compare_logits(reference_logits(), wide), Error);
  EXPECT_THROW(compare_logits(reference_logits(), reference_logits().slice(0, 0, 5)), Error);
  EXPECT_THROW(logits_of(lookup(reference_logits()), at::zeros({0, 1, 1, 1}), 2), Error);
  EXPECT_THROW(logits_of(lookup(reference_logits()), numbered_images(6), 0), Error);
}

}  // namespace
}  // namespace qimera::eval
