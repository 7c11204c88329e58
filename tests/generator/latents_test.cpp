// Latent batches: the ordinary / superposed decision, soft targets, mixing weights, determinism.
#include "qimera/generator/generator.h"
#include "qimera/generator/latents.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "qimera/core/error.h"
#include "support/test_support.h"

namespace qimera::generator {
namespace {
using ::testing::HasSubstr;

TEST(SuperpositionOptions, Validates) {
  EXPECT_NO_THROW((SuperpositionOptions{2, 0.4}.validate()));
  EXPECT_NO_THROW((SuperpositionOptions{1, 1.0}.validate()));
  // k is irrelevant while superposition is off:
  EXPECT_NO_THROW((SuperpositionOptions{0, 0.0}.validate()));
  EXPECT_THROW((SuperpositionOptions{0, 0.4}.validate()), Error);
  EXPECT_THROW((SuperpositionOptions{-3, 0.7}.validate()), Error);
  EXPECT_THROW((SuperpositionOptions{2, -0.1}.validate()), Error);
  EXPECT_THROW((SuperpositionOptions{2, 1.5}.validate()), Error);
  EXPECT_THROW((SuperpositionOptions{2, std::nan("")}.validate()), Error);
  EXPECT_THAT(testing::error_of([&] { SuperpositionOptions{2, 1.5}.validate(); }), HasSubstr("[0, 1]"));
}

TEST(SuperpositionOptions, JsonRoundTrip) {
  const auto json = SuperpositionOptions{10, 0.7}.to_json();
  const auto back = SuperpositionOptions::from_json(json);
  EXPECT_EQ(back.k, 10);
  EXPECT_DOUBLE_EQ(back.p, 0.7);
  EXPECT_EQ(SuperpositionOptions::from_json(nlohmann::json::object()).k, 2);
  EXPECT_THROW(SuperpositionOptions::from_json({{"K", 2}}), Error);  // unknown key (typo)
  EXPECT_THROW(SuperpositionOptions::from_json({{"p", 2.0}}), Error);
  EXPECT_THROW(SuperpositionOptions::from_json({{"k", "two"}}), Error);
}

TEST(SoftTargets, OrdinaryIsOneHot) {
  const auto labels = at::tensor(std::vector<int64_t>{2, 0, 2});
  const auto t = soft_targets(labels, {}, 4);
  const auto expected =
      at::tensor(std::vector<float>{0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0}).view({3, 4});
  EXPECT_TRUE(at::equal(t, expected));
}

TEST(SoftTargets, RepeatedLabelsAddUp) {
  const auto labels = at::tensor(std::vector<int64_t>{1, 3, 1, 2, 2, 2}).view({2, 3});
  const auto mix = at::tensor(std::vector<float>{0.2f, 0.3f, 0.5f, 0.1f, 0.6f, 0.3f}).view({2, 3});
  const auto t = soft_targets(labels, mix, 4);
  const auto expected =
      at::tensor(std::vector<float>{0, 0.7f, 0, 0.3f, 0, 0, 1.0f, 0}).view({2, 4});
  EXPECT_TRUE(at::allclose(t, expected, 0, 1e-6)) << t;
}

TEST(SoftTargets, RejectsInconsistentInputs) {
  const auto labels = at::zeros({2, 3}, at::kLong);
  EXPECT_THROW(soft_targets(labels, {}, 4), Error);                // superposed without mix
  EXPECT_THROW(soft_targets(labels, at::ones({2, 2}), 4), Error);  // mix of the wrong shape
  EXPECT_THROW(soft_targets(at::zeros({2}, at::kLong), at::ones({2}), 4), Error);
  EXPECT_THROW(soft_targets(at::zeros({2}), {}, 4), Error);  // float labels
  EXPECT_THROW(soft_targets(at::zeros({2, 2, 2}, at::kLong), {}, 4), Error);
}

TEST(SampleLatents, OrdinaryBatch) {
  torch::manual_seed(1);
  const auto b = sample_latents(64, 10, 16, SuperpositionOptions{3, 0.0}, at::kCPU);
  EXPECT_FALSE(b.superposed());
  EXPECT_EQ(b.k(), 1);
  EXPECT_EQ(b.labels.sizes(), (at::IntArrayRef{64}));
  EXPECT_EQ(b.labels.scalar_type(), at::kLong);
  EXPECT_EQ(b.noise.sizes(), (at::IntArrayRef{64, 16}));
  EXPECT_FALSE(b.mix.defined());
  EXPECT_GE(b.labels.min().item<int64_t>(), 0);
  EXPECT_LT(b.labels.max().item<int64_t>(), 10);
  EXPECT_TRUE(at::equal(b.targets, at::one_hot(b.labels, 10).to(at::kFloat)));
}

TEST(SampleLatents, SuperposedBatch) {
  torch::manual_seed(2);
  const auto b = sample_latents(64, 5, 16, SuperpositionOptions{4, 1.0}, at::kCPU);
  ASSERT_TRUE(b.superposed());
  EXPECT_EQ(b.k(), 4);
  EXPECT_EQ(b.batch_size(), 64);
  EXPECT_EQ(b.labels.sizes(), (at::IntArrayRef{64, 4}));
  EXPECT_EQ(b.noise.sizes(), (at::IntArrayRef{64, 4, 16}));
  EXPECT_EQ(b.mix.sizes(), (at::IntArrayRef{64, 4}));
  EXPECT_EQ(b.targets.sizes(), (at::IntArrayRef{64, 5}));
  // Mix rows are a softmax: positive, summing to 1; and not all equal (they are random).
  EXPECT_GT(b.mix.min().item<float>(), 0.0f);
  EXPECT_TRUE(at::allclose(b.mix.sum(1), at::ones({64}), 0, 1e-6));
  EXPECT_GT(b.mix.std().item<float>(), 0.05f);
  // Targets: rows sum to 1 and equal the lambda mass per class (K = 4 > 5 / 2: repeats are common).
  EXPECT_TRUE(at::allclose(b.targets.sum(1), at::ones({64}), 0, 1e-6));
  for (int64_t i = 0; i < 64; ++i) {
    for (int64_t c = 0; c < 5; ++c) {
      const float mass = (b.mix[i] * b.labels[i].eq(c).to(at::kFloat)).sum().item<float>();
      EXPECT_NEAR(b.targets[i][c].item<float>(), mass, 1e-6);
    }
  }
  EXPECT_GE(b.labels.min().item<int64_t>(), 0);
  EXPECT_LT(b.labels.max().item<int64_t>(), 5);
}

TEST(SampleLatents, NoiseIsStandardNormal) {
  torch::manual_seed(3);
  const auto b = sample_latents(512, 10, 64, SuperpositionOptions{2, 0.0}, at::kCPU);
  // 32768 draws: the mean's standard error is 0.0055.
  EXPECT_NEAR(b.noise.mean().item<double>(), 0.0, 0.03);
  EXPECT_NEAR(b.noise.std().item<double>(), 1.0, 0.03);
  // Labels cover all classes roughly uniformly (51.2 expected per class).
  const auto counts = at::bincount(b.labels, {}, 10);
  EXPECT_GT(counts.min().item<int64_t>(), 20);
}

int count_superposed(int draws, double p) {
  int superposed = 0;
  for (int i = 0; i < draws; ++i) {
    superposed += sample_latents(1, 10, 2, SuperpositionOptions{2, p}, at::kCPU).superposed() ? 1 : 0;
  }
  return superposed;
}

TEST(SampleLatents, SuperposedShareIsP) {
  torch::manual_seed(4);
  const int n = 2000;
  const double p = 0.4;
  const double sd = std::sqrt(n * p * (1 - p));  // binomial: 21.9
  EXPECT_NEAR(count_superposed(n, p), n * p, 4 * sd);
  EXPECT_EQ(count_superposed(300, 0.0), 0);
  EXPECT_EQ(count_superposed(300, 1.0), 300);
}

TEST(SampleLatents, DeterministicUnderManualSeed) {
  auto draw = [] {
    torch::manual_seed(42);
    std::vector<LatentBatch> batches;
    for (int i = 0; i < 6; ++i) batches.push_back(sample_latents(8, 10, 4, SuperpositionOptions{3, 0.5}, at::kCPU));
    return batches;
  };
  const auto a = draw();
  const auto b = draw();
  int superposed = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].superposed(), b[i].superposed());
    superposed += a[i].superposed();
    EXPECT_TRUE(at::equal(a[i].labels, b[i].labels));
    EXPECT_TRUE(at::equal(a[i].noise, b[i].noise));
    EXPECT_TRUE(at::equal(a[i].targets, b[i].targets));
    if (a[i].superposed()) {
      EXPECT_TRUE(at::equal(a[i].mix, b[i].mix));
    }
  }
  EXPECT_GT(superposed, 0);  // the seed gives both kinds (a change of the draw order shows here)
  EXPECT_LT(superposed, 6);
  torch::manual_seed(43);
  EXPECT_FALSE(at::equal(sample_latents(8, 10, 4, SuperpositionOptions{3, 0.0}, at::kCPU).noise, a[0].noise));
}

TEST(SampleLatents, RejectsBadSizes) {
  EXPECT_THROW(sample_latents(0, 10, 4, SuperpositionOptions{2, 0.0}, at::kCPU), Error);
  EXPECT_THROW(sample_latents(4, 0, 4, SuperpositionOptions{2, 0.0}, at::kCPU), Error);
  EXPECT_THROW(sample_latents(4, 10, 0, SuperpositionOptions{2, 0.0}, at::kCPU), Error);
  EXPECT_THROW(sample_latents(4, 10, 4, SuperpositionOptions{0, 0.5}, at::kCPU), Error);
}

TEST(LatentBatch, MovesEveryTensor) {
  const auto b = sample_latents(4, 10, 4, SuperpositionOptions{2, 1.0}, at::kCPU).to(at::kCPU);
  EXPECT_TRUE(b.labels.defined() && b.noise.defined() && b.mix.defined() && b.targets.defined());
  const auto o = sample_latents(4, 10, 4, SuperpositionOptions{2, 0.0}, at::kCPU).to(at::kCPU);
  EXPECT_FALSE(o.mix.defined());
}


// Options read from JSON (a run's config): error messages show a bounded excerpt of a bad value
// (they used to dump() it whole, which recursed through deep nesting), and 2^63 is not negative.
TEST(OptionsJson, BadValuesAreExcerptedNotDumped) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  // nlohmann's parser is iterative; only printing the value recursed.
  nlohmann::json options = nlohmann::json::parse(R"({"k": 2, "p": 0.5})");
  options["k"] = nlohmann::json::parse(deep);
  const auto message = testing::error_of([&] { SuperpositionOptions::from_json(options); });
  EXPECT_LT(message.size(), 300u);
  EXPECT_THAT(message, HasSubstr("superposition option k is [[[["));
  nlohmann::json generator = GeneratorOptions(10, 32, 3, 64).to_json();
  generator["embedding_init"] = nlohmann::json::parse(deep);
  EXPECT_THROW(GeneratorOptions::from_json(generator), Error);
  generator = GeneratorOptions(10, 32, 3, 64).to_json();
  generator["num_classes"] = nlohmann::json::parse("9223372036854775808");
  EXPECT_THAT(testing::error_of([&] { GeneratorOptions::from_json(generator); }),
              HasSubstr("'num_classes' is 9223372036854775808"));
  generator = GeneratorOptions(10, 32, 3, 64).to_json();
  generator["image_size"] = 100000;
  EXPECT_THROW(GeneratorOptions::from_json(generator), Error);
  nlohmann::json bad_object = nlohmann::json::parse(deep);
  EXPECT_THROW(GeneratorOptions::from_json(bad_object), Error);
}

}  // namespace
}  // namespace qimera::generator
