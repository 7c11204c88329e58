// The generator: options, the embedding normalizer, DM and superposition, EEI, conditional batch
// norm, output shapes and where gradients go.
#include "qimera/generator/generator.h"

#include <ATen/ATen.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <nlohmann/json.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "qimera/core/error.h"
#include "support/test_support.h"

namespace qimera::generator {
namespace {
using ::testing::HasSubstr;

LatentBatch ordinary(std::vector<int64_t> labels, const at::Tensor& noise) {
  LatentBatch b;
  b.labels = at::tensor(labels);
  b.noise = noise;
  return b;
}

LatentBatch superposed(std::vector<int64_t> labels, int64_t k, const at::Tensor& noise,
                       const at::Tensor& mix) {
  LatentBatch b;
  b.labels = at::tensor(labels).view({-1, k});
  b.noise = noise;
  b.mix = mix;
  return b;
}

at::Tensor param(torch::nn::Module& m, const std::string& name) {
  return m.named_parameters()[name];
}

// ---- options ----

TEST(GeneratorOptions, Validates) {
  EXPECT_NO_THROW(GeneratorOptions(10, 32, 3, 64).validate());
  EXPECT_NO_THROW(GeneratorOptions(10, 28, 1, 64).validate());
  auto message = [](const GeneratorOptions& o) -> std::string {
    try {
      o.validate();
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_THAT(message(GeneratorOptions(10, 30, 3, 64)), HasSubstr("multiple of 4"));
  EXPECT_THAT(message(GeneratorOptions(10, 0, 3, 64)), HasSubstr("multiple of 4"));
  EXPECT_THAT(message(GeneratorOptions(0, 32, 3, 64)), HasSubstr("num_classes"));
  EXPECT_THAT(message(GeneratorOptions(10, 32, 0, 64)), HasSubstr("channels"));
  EXPECT_THAT(message(GeneratorOptions(10, 32, 3, 1)), HasSubstr("latent_dim"));
  auto dm = GeneratorOptions(10, 32, 3, 64);
  dm.disentangle = true;
  dm.disentangle_dim = 0;
  EXPECT_THAT(message(dm), HasSubstr("disentangle_dim"));
  dm.disentangle = false;  // d only matters with DM on
  EXPECT_EQ(message(dm), "");
  EXPECT_THROW(Generator(GeneratorOptions(10, 30, 3, 64)), Error);  // the constructor validates
}

TEST(GeneratorOptions, JsonRoundTrip) {
  GeneratorOptions o(1000, 224, 3, 2048);
  o.disentangle = true;
  o.disentangle_dim = 64;
  o.conditional_bn = true;
  o.embedding_init = EmbeddingInit::Extracted;
  o.freeze_embeddings = true;
  const auto json = o.to_json();
  EXPECT_EQ(json.at("embedding_init"), "extracted");
  const auto back = GeneratorOptions::from_json(json);
  EXPECT_EQ(back.to_json(), json);
  EXPECT_EQ(back.num_classes, 1000);
  EXPECT_EQ(back.disentangle_dim, 64);
  EXPECT_EQ(back.embedding_init, EmbeddingInit::Extracted);

  const auto minimal = GeneratorOptions::from_json(
      {{"num_classes", 10}, {"image_size", 32}, {"channels", 3}, {"latent_dim", 64}});
  EXPECT_FALSE(minimal.disentangle);
  EXPECT_EQ(minimal.disentangle_dim, 100);
  EXPECT_EQ(minimal.embedding_init, EmbeddingInit::Random);

  auto with = [&](const char* key, nlohmann::json value) {
    auto j = json;
    j[key] = std::move(value);
    return j;
  };
  EXPECT_THROW(GeneratorOptions::from_json(with("image_size", 30)), Error);
  EXPECT_THROW(GeneratorOptions::from_json(with("embedding_init", "eei")), Error);
  EXPECT_THROW(GeneratorOptions::from_json(with("disentangel", true)), Error);
  EXPECT_THROW(GeneratorOptions::from_json(with("disentangle", 1)), Error);
  auto missing = json;
  missing.erase("channels");
  EXPECT_THAT(testing::error_of([&] { GeneratorOptions::from_json(missing); }), HasSubstr("channels"));
  EXPECT_EQ(parse_embedding_init("random"), EmbeddingInit::Random);
  EXPECT_THROW(parse_embedding_init("Random "), Error);
}

// ---- the embedding normalizer ----

TEST(Normalizer, OrdinaryRowsHandComputed) {
  // Row [1, 2, 3, 4]: mean 2.5, biased variance 1.25. Row [2, 2, 2, 6]: mean 3, variance 3.
  const auto x = at::tensor(std::vector<float>{1, 2, 3, 4, 2, 2, 2, 6}).view({2, 4});
  const auto y = normalize_embeddings(x);
  const double s1 = 1.0 / std::sqrt(1.25 + 1e-5);
  const double s2 = 1.0 / std::sqrt(3.0 + 1e-5);
  const auto expected =
      at::tensor(std::vector<float>{float(-1.5 * s1), float(-0.5 * s1), float(0.5 * s1),
                                    float(1.5 * s1), float(-1 * s2), float(-1 * s2), float(-1 * s2),
                                    float(3 * s2)})
          .view({2, 4});
  EXPECT_TRUE(at::allclose(y, expected, 1e-6, 1e-6)) << y;
}

TEST(Normalizer, SuperposedSlicesHandComputed) {
  // k = 0 slice over B x D = {1, 2, 3, 6}: mean 3, variance 3.5; k = 1 slice {0, 0, 4, 4}: mean 2,
  // variance 4. Rows alone would give different statistics.
  const auto x = at::tensor(std::vector<float>{1, 2, 0, 0, 3, 6, 4, 4}).view({2, 2, 2});
  const auto y = normalize_embeddings(x);
  const double a = 1.0 / std::sqrt(3.5 + 1e-5);
  const double b = 1.0 / std::sqrt(4.0 + 1e-5);
  const auto expected =
      at::tensor(std::vector<float>{float(-2 * a), float(-1 * a), float(-2 * b), float(-2 * b),
                                    float(0 * a), float(3 * a), float(2 * b), float(2 * b)})
          .view({2, 2, 2});
  EXPECT_TRUE(at::allclose(y, expected, 1e-6, 1e-6)) << y;
}

TEST(Normalizer, StandardizesRowsOrSlices) {
  torch::manual_seed(5);
  const auto x = at::randn({16, 32}) * 3 + 2;
  const auto y = normalize_embeddings(x);
  // Each row: mean 0, biased variance var / (var + eps), i.e. 1 up to the eps effect.
  EXPECT_LT(y.mean(1).abs().max().item<float>(), 1e-5);
  EXPECT_LT((y.var(at::IntArrayRef{1}, /*unbiased=*/false) - 1).abs().max().item<float>(), 1e-5);
  // Not per slice over the batch: column means are not all zero.
  EXPECT_GT(y.mean(0).abs().max().item<float>(), 0.05);

  const auto x3 = at::randn({8, 3, 32}) * 2 - 1;
  const auto y3 = normalize_embeddings(x3);
  for (int64_t k = 0; k < 3; ++k) {
    const auto slice = y3.select(1, k);
    EXPECT_LT(std::abs(slice.mean().item<float>()), 1e-5);
    EXPECT_NEAR(slice.var(/*unbiased=*/false).item<float>(), 1.0f, 1e-5);
  }
  EXPECT_GT(y3.mean(2).abs().max().item<float>(), 0.01);  // rows are not standardized alone
  EXPECT_THROW(normalize_embeddings(at::ones({4})), Error);
}

// ---- shapes ----

struct ShapeCase {
  const char* name;
  GeneratorOptions options;
};

TEST(Generator, OutputShapes) {
  GeneratorOptions cifar(10, 32, 3, 64);
  GeneratorOptions mnist(10, 28, 1, 16);
  mnist.disentangle = true;
  mnist.disentangle_dim = 8;
  GeneratorOptions imagenet(20, 16, 3, 32);  // ImageNet-style generator, small S for speed
  imagenet.conditional_bn = true;
  imagenet.disentangle = true;
  for (const auto& c : {ShapeCase{"cifar", cifar}, ShapeCase{"mnist", mnist},
                        ShapeCase{"imagenet-cbn", imagenet}}) {
    SCOPED_TRACE(c.name);
    torch::manual_seed(6);
    Generator g(c.options);
    const auto& o = c.options;
    for (double p : {0.0, 1.0}) {
      const auto batch = sample_latents(5, o.num_classes, o.latent_dim, SuperpositionOptions{3, p},
                                        at::kCPU);
      ASSERT_EQ(batch.superposed(), p == 1.0);
      EXPECT_EQ(g->embed(batch).sizes(), (at::IntArrayRef{5, o.input_width()}));
      const auto images = g->forward(batch);
      EXPECT_EQ(images.sizes(), (at::IntArrayRef{5, o.channels, o.image_size, o.image_size}));
      EXPECT_TRUE(images.isfinite().all().item<bool>());
      // The last BN has no affine part: every channel has batch mean 0.
      EXPECT_LT(images.mean({0, 2, 3}).abs().max().item<float>(), 1e-4);
    }
  }
}

TEST(Generator, ImageNetSizeWidths) {
  GeneratorOptions o(1000, 224, 3, 2048);
  EXPECT_EQ(o.init_size(), 56);
  EXPECT_EQ(o.input_width(), 2048);
  o.disentangle = true;
  EXPECT_EQ(o.input_width(), 100);
  // Built (not run) with a narrow embedding so that the first Linear stays small.
  GeneratorOptions small(1000, 224, 3, 4);
  small.conditional_bn = true;
  small.disentangle = true;
  small.disentangle_dim = 3;
  Generator g(small);
  EXPECT_EQ(param(*g, "l1.0.weight").sizes(), (at::IntArrayRef{128 * 56 * 56, 3}));
  EXPECT_EQ(param(*g, "fc_reducer.weight").sizes(), (at::IntArrayRef{3, 4}));
  EXPECT_EQ(param(*g, "conv_blocks0_0.weights.weight").sizes(), (at::IntArrayRef{1000, 128}));
  EXPECT_EQ(param(*g, "conv_blocks2_1.biases.weight").sizes(), (at::IntArrayRef{1000, 64}));
  EXPECT_EQ(param(*g, "conv_blocks2_3.weight").sizes(), (at::IntArrayRef{3, 64, 3, 3}));
}

TEST(Generator, DefaultInitialization) {
  torch::manual_seed(7);
  GeneratorOptions o(100, 8, 3, 512);
  o.disentangle = true;
  Generator g(o);
  // E ~ N(0, 1) like nn.Embedding.
  const auto e = g->embeddings();
  EXPECT_NEAR(e.mean().item<float>(), 0.0f, 0.02f);
  EXPECT_NEAR(e.std().item<float>(), 1.0f, 0.02f);
  // Linear: kaiming_uniform(a = sqrt 5) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), bias likewise.
  const double bound = 1.0 / std::sqrt(512.0);
  const auto w = param(*g, "fc_reducer.weight");
  EXPECT_LE(w.abs().max().item<float>(), bound);
  EXPECT_GT(w.abs().max().item<float>(), 0.95 * bound);
  EXPECT_LE(param(*g, "fc_reducer.bias").abs().max().item<float>(), bound);
  EXPECT_LE(param(*g, "conv_blocks1.0.weight").abs().max().item<float>(),
            1.0 / std::sqrt(128.0 * 9));
  EXPECT_TRUE(at::equal(param(*g, "conv_blocks1.1.weight"), at::ones({128})));
  EXPECT_TRUE(at::equal(param(*g, "conv_blocks1.1.bias"), at::zeros({128})));
  // The last BN has no affine parameters; the BN epsilons are the reference's.
  EXPECT_EQ(g->named_parameters().find("conv_blocks2.5.weight"), nullptr);
  EXPECT_EQ(g->named_buffers()["conv_blocks2.5.running_var"].sizes(), (at::IntArrayRef{3}));
}

// ---- gradients ----

void expect_gradients(Generator& g, bool embeddings_frozen) {
  const auto& o = g->options();
  torch::manual_seed(8);
  for (double p : {0.0, 1.0}) {
    SCOPED_TRACE(p);
    g->zero_grad();
    const auto batch = sample_latents(6, o.num_classes, o.latent_dim, SuperpositionOptions{2, p},
                                      at::kCPU);
    const auto images = g->forward(batch);
    // A random projection: the sum of a BN output would have no gradient at all.
    (images * at::randn(images.sizes())).sum().backward();
    for (const auto& item : g->named_parameters()) {
      const auto& name = item.key();
      SCOPED_TRACE(name);
      if (name == "label_emb.weight" && embeddings_frozen) {
        EXPECT_FALSE(item.value().requires_grad());
        EXPECT_FALSE(item.value().grad().defined());
        continue;
      }
      ASSERT_TRUE(item.value().grad().defined());
      // Biases of a convolution followed by a batch-statistics BN have (mathematically) no
      // gradient; everything else must receive one.
      const bool shift_before_bn = name == "conv_blocks1.0.bias" || name == "conv_blocks2.0.bias" ||
                                   name == "conv_blocks1_0.bias" || name == "conv_blocks2_0.bias";
      if (!shift_before_bn) {
        EXPECT_GT(item.value().grad().abs().max().item<float>(), 1e-7);
      }
    }
  }
}

TEST(Generator, GradientsReachEveryParameter) {
  GeneratorOptions plain(5, 8, 3, 16);
  plain.disentangle = true;
  plain.disentangle_dim = 8;
  Generator a(plain);
  expect_gradients(a, false);

  GeneratorOptions cbn(5, 8, 3, 16);
  cbn.conditional_bn = true;
  Generator b(cbn);
  expect_gradients(b, false);
}

TEST(Generator, FrozenEmbeddingsGetNoGradient) {
  GeneratorOptions o(5, 8, 3, 16);
  o.disentangle = true;
  o.freeze_embeddings = true;
  Generator g(o);
  expect_gradients(g, true);
}

// ---- superposition ----

TEST(Generator, OneHotMixEqualsOrdinarySample) {
  // With B = 1 the superposed normalizer's per-k statistics over B x D are the ordinary per-sample
  // ones, so mixing with lambda = e_1 must reproduce the ordinary image of (y_1, z_1) (plain BN:
  // the body sees the same input).
  GeneratorOptions o(7, 8, 3, 12);
  o.disentangle = true;
  o.disentangle_dim = 6;
  torch::manual_seed(9);
  Generator g(o);
  const auto z = at::randn({1, 3, 12});
  const auto mixed =
      superposed({4, 1, 6}, 3, z, at::tensor(std::vector<float>{1, 0, 0}).view({1, 3}));
  const auto plain = ordinary({4}, z.select(1, 0));
  EXPECT_TRUE(at::allclose(g->embed(mixed), g->embed(plain), 1e-5, 1e-6));
  // Two samples so that the body's batch norms see a batch (the same sample twice).
  const auto twice = [](LatentBatch b) {
    b.labels = at::cat({b.labels, b.labels});
    b.noise = at::cat({b.noise, b.noise});
    if (b.mix.defined()) b.mix = at::cat({b.mix, b.mix});
    return b;
  };
  // Batch statistics of a sample repeated are its own statistics: normalizer unchanged.
  EXPECT_TRUE(at::allclose(g->forward(twice(mixed)), g->forward(twice(plain)), 1e-4, 1e-5));
  // A different one-hot position picks the other class and noise.
  const auto second =
      superposed({4, 1, 6}, 3, z, at::tensor(std::vector<float>{0, 1, 0}).view({1, 3}));
  EXPECT_TRUE(at::allclose(g->embed(second), g->embed(ordinary({1}, z.select(1, 1))), 1e-5, 1e-6));
}

TEST(Generator, TwoWayMixIsWeightedSumOfMappedEmbeddings) {
  GeneratorOptions o(5, 8, 3, 10);
  o.disentangle = true;
  o.disentangle_dim = 4;
  torch::manual_seed(10);
  Generator g(o);
  const int64_t b = 6;
  const auto labels = std::vector<int64_t>{0, 1, 2, 2, 4, 3, 1, 1, 0, 4, 3, 0};
  const auto z = at::randn({b, 2, 10});
  const auto mix = at::softmax(at::randn({b, 2}), 1);
  const auto batch = superposed(labels, 2, z, mix);
  // By hand: each k-slice standardized over its B x D entries, mapped by DM, then lambda-weighted.
  const auto e = g->embeddings();
  const auto w = param(*g, "fc_reducer.weight");
  const auto bias = param(*g, "fc_reducer.bias");
  const auto y = batch.labels;
  auto expected = at::zeros({b, 4});
  for (int64_t k = 0; k < 2; ++k) {
    const auto s = e.index_select(0, y.select(1, k)) + z.select(1, k);
    const auto n = (s - s.mean()) / at::sqrt(s.var(/*unbiased=*/false) + 1e-5);
    expected = expected + mix.select(1, k).unsqueeze(1) * (at::matmul(n, w.t()) + bias);
  }
  EXPECT_TRUE(at::allclose(g->embed(batch), expected, 1e-5, 1e-5));
  // Without DM the same holds with M = identity.
  GeneratorOptions no_dm = o;
  no_dm.disentangle = false;
  Generator h(no_dm);
  auto expected_no_dm = at::zeros({b, 10});
  for (int64_t k = 0; k < 2; ++k) {
    const auto s = h->embeddings().index_select(0, y.select(1, k)) + z.select(1, k);
    expected_no_dm = expected_no_dm +
                     mix.select(1, k).unsqueeze(1) * (s - s.mean()) / at::sqrt(s.var(false) + 1e-5);
  }
  EXPECT_TRUE(at::allclose(h->embed(batch), expected_no_dm, 1e-5, 1e-5));
}

TEST(Generator, RejectsMalformedBatches) {
  Generator g(GeneratorOptions(5, 8, 3, 10));
  const auto z = at::randn({2, 10});
  EXPECT_NO_THROW(g->forward(ordinary({0, 1}, z)));
  EXPECT_THROW(g->forward(ordinary({0, 1}, at::randn({2, 9}))), Error);  // wrong D
  EXPECT_THROW(g->forward(ordinary({0, 1, 2}, z)), Error);               // B mismatch
  auto with_mix = ordinary({0, 1}, z);
  with_mix.mix = at::ones({2});
  EXPECT_THROW(g->forward(with_mix), Error);
  auto float_labels = ordinary({0, 1}, z);
  float_labels.labels = float_labels.labels.to(at::kFloat);
  EXPECT_THROW(g->forward(float_labels), Error);
  const auto z3 = at::randn({2, 3, 10});
  EXPECT_THROW(g->forward(superposed({0, 1, 2, 3, 4, 0}, 3, z3, {})), Error);  // no mix
  EXPECT_THROW(g->forward(superposed({0, 1, 2, 3, 4, 0}, 3, z3, at::ones({2, 2}))), Error);
  EXPECT_THROW(g->forward(superposed({0, 1, 2, 3}, 2, z3, at::ones({2, 2}))), Error);  // noise K
  EXPECT_NO_THROW(g->forward(superposed({0, 1, 2, 3, 4, 0}, 3, z3, at::ones({2, 3}) / 3)));
}

// ---- EEI ----

TEST(Eei, CopiesTheTeacherWeight) {
  GeneratorOptions o(4, 8, 3, 6);
  o.embedding_init = EmbeddingInit::Extracted;
  Generator g(o);
  const auto fc = at::arange(24, at::kDouble).view({4, 6}) / 7;  // converted to float32
  g->init_embeddings_from(fc);
  EXPECT_TRUE(at::equal(g->embeddings(), fc.to(at::kFloat)));
  EXPECT_TRUE(g->embeddings().requires_grad());  // trainable unless frozen
  // The table is what the generator uses: E[y] + 0 noise, normalized, is row y standardized.
  const auto e = g->embed(ordinary({2, 3}, at::zeros({2, 6})));
  EXPECT_TRUE(
      at::allclose(e, normalize_embeddings(fc.to(at::kFloat).index({at::indexing::Slice(2, 4)}))));
}

TEST(Eei, ScaledKeepsDirectionsAndGetsUnitRootMeanSquare) {
  GeneratorOptions o(2, 8, 3, 4);
  o.embedding_init = EmbeddingInit::ExtractedScaled;
  Generator g(o);
  // Entries 1, -2, 2, 4 and a zero row: mean square (1 + 4 + 4 + 16) / 8 = 3.125.
  const auto fc = at::tensor(std::vector<float>{1, -2, 2, 4, 0, 0, 0, 0}).view({2, 4});
  g->init_embeddings_from(fc);
  const auto expected = fc / std::sqrt(3.125);
  EXPECT_TRUE(at::allclose(g->embeddings(), expected, 1e-6, 1e-7));
  EXPECT_NEAR(g->embeddings().square().mean().item<double>(), 1.0, 1e-6);
  EXPECT_TRUE(g->embeddings().requires_grad());
  // Nothing to scale: an all-zero weight is refused by name rather than turned into NaN.
  Generator zero(o);
  EXPECT_THAT(testing::error_of([&] { zero->init_embeddings_from(at::zeros({2, 4})); }),
              HasSubstr("extracted-scaled"));
  EXPECT_EQ(parse_embedding_init("extracted-scaled"), EmbeddingInit::ExtractedScaled);
  EXPECT_EQ(GeneratorOptions::from_json(o.to_json()).embedding_init, EmbeddingInit::ExtractedScaled);
}

TEST(Eei, RejectsWrongShapesAndConfigurations) {
  GeneratorOptions o(4, 8, 3, 6);
  o.embedding_init = EmbeddingInit::Extracted;
  Generator g(o);
  EXPECT_THAT(testing::error_of([&] { g->init_embeddings_from(at::zeros({6, 4})); }), HasSubstr("[4, 6]"));
  EXPECT_THROW(g->init_embeddings_from(at::zeros({4, 6, 1, 1})), Error);
  EXPECT_THROW(g->init_embeddings_from(at::zeros({4, 6}, at::kLong)), Error);
  EXPECT_THROW(g->init_embeddings_from(at::Tensor()), Error);
  Generator random(GeneratorOptions(4, 8, 3, 6));  // embedding_init = random
  EXPECT_THROW(random->init_embeddings_from(at::zeros({4, 6})), Error);
}

TEST(Eei, FrozenTableStaysPut) {
  GeneratorOptions o(4, 8, 3, 6);
  o.embedding_init = EmbeddingInit::Extracted;
  o.freeze_embeddings = true;
  Generator g(o);
  const auto fc = at::randn({4, 6});
  g->init_embeddings_from(fc);
  EXPECT_FALSE(g->embeddings().requires_grad());
  const auto images = g->forward(ordinary({0, 1, 3}, at::randn({3, 6})));
  (images * at::randn(images.sizes())).sum().backward();
  EXPECT_FALSE(g->embeddings().grad().defined());
  EXPECT_TRUE(param(*g, "l1.0.weight").grad().defined());
  EXPECT_TRUE(at::equal(g->embeddings(), fc));
}

// ---- categorical conditional batch norm ----

TEST(ConditionalBatchNorm, OrdinaryAndSuperposedScaleAndShift) {
  CategoricalConditionalBatchNorm2d cbn(CategoricalConditionalBatchNorm2dOptions(3, 2));
  {
    at::NoGradGuard no_grad;
    cbn->weights->weight.copy_(at::tensor(std::vector<float>{1, 2, 3, 4, 5, 6}).view({3, 2}));
    cbn->biases->weight.copy_(
        at::tensor(std::vector<float>{0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f}).view({3, 2}));
  }
  // Ordinary: rows of the tables.
  auto [g1, b1] = cbn->scale_and_shift(at::tensor(std::vector<int64_t>{0, 2}));
  EXPECT_TRUE(at::allclose(g1, at::tensor(std::vector<float>{1, 2, 5, 6}).view({2, 2})));
  EXPECT_TRUE(
      at::allclose(b1, at::tensor(std::vector<float>{0.1f, 0.2f, 0.5f, 0.6f}).view({2, 2})));
  // Superposed, labels [[0, 1], [2, 2]], lambda [[0.25, 0.75], [0.5, 0.5]]: mean over k of
  // lambda_k * row(y_k): row 0 = ((0.25 + 2.25) / 2, (0.5 + 3) / 2) = (1.25, 1.75);
  // row 1 = ((2.5 + 2.5) / 2, (3 + 3) / 2) = (2.5, 3): half of row 2 although both labels are 2.
  // Shifts likewise: ((0.025 + 0.225) / 2, (0.05 + 0.3) / 2) = (0.125, 0.175) and (0.25, 0.3).
  const auto labels = at::tensor(std::vector<int64_t>{0, 1, 2, 2}).view({2, 2});
  const auto mix = at::tensor(std::vector<float>{0.25f, 0.75f, 0.5f, 0.5f}).view({2, 2});
  auto [g2, b2] = cbn->scale_and_shift(labels, mix);
  EXPECT_TRUE(
      at::allclose(g2, at::tensor(std::vector<float>{1.25f, 1.75f, 2.5f, 3.0f}).view({2, 2})));
  EXPECT_TRUE(
      at::allclose(b2, at::tensor(std::vector<float>{0.125f, 0.175f, 0.25f, 0.3f}).view({2, 2})));

  // Forward: batch-statistics BN (eps 1e-5, no affine), then gamma * x + beta per sample.
  torch::manual_seed(11);
  const auto x = at::randn({2, 2, 3, 3});
  const auto mean = x.mean({0, 2, 3}, true);
  const auto var = x.var(at::IntArrayRef{0, 2, 3}, /*unbiased=*/false, true);
  const auto normalized = (x - mean) / at::sqrt(var + 1e-5);
  const auto y = cbn->forward(x, labels, mix);
  EXPECT_TRUE(
      at::allclose(y, g2.view({2, 2, 1, 1}) * normalized + b2.view({2, 2, 1, 1}), 1e-5, 1e-5));
  const auto y1 = cbn->forward(x, at::tensor(std::vector<int64_t>{0, 2}));
  EXPECT_TRUE(
      at::allclose(y1, g1.view({2, 2, 1, 1}) * normalized + b1.view({2, 2, 1, 1}), 1e-5, 1e-5));
  // Running statistics are tracked as in PyTorch (momentum 0.1), though training never reads them.
  EXPECT_EQ(cbn->num_batches_tracked.item<int64_t>(), 2);
  EXPECT_TRUE(at::allclose(cbn->running_mean, 0.19 * mean.flatten(), 1e-5, 1e-6));
  EXPECT_THROW(cbn->forward(x, labels), Error);  // superposed labels without mix
  EXPECT_THROW(cbn->forward(at::randn({2, 3, 3, 3}), at::tensor(std::vector<int64_t>{0, 2})),
               Error);
}

TEST(ConditionalBatchNorm, OneHotMixShrinksByK) {
  // The reference's mean over k: a one-hot mix over K = 4 gives a quarter of the class's scale.
  CategoricalConditionalBatchNorm2d cbn(CategoricalConditionalBatchNorm2dOptions(3, 2));
  {
    at::NoGradGuard no_grad;
    cbn->weights->weight.fill_(2.0);
  }
  auto [gamma, beta] =
      cbn->scale_and_shift(at::tensor(std::vector<int64_t>{1, 0, 2, 2}).view({1, 4}),
                           at::tensor(std::vector<float>{1, 0, 0, 0}).view({1, 4}));
  EXPECT_TRUE(at::allclose(gamma, at::full({1, 2}, 0.5)));
  EXPECT_TRUE(at::allclose(beta, at::zeros({1, 2})));
}

TEST(ConditionalBatchNorm, GeneratorUsesTheEps) {
  GeneratorOptions o(3, 8, 3, 6);
  o.conditional_bn = true;
  Generator g(o);
  const auto children = g->named_children();
  EXPECT_DOUBLE_EQ(
      children["conv_blocks0_0"]->as<CategoricalConditionalBatchNorm2d>()->options().eps, 1e-5);
  EXPECT_DOUBLE_EQ(
      children["conv_blocks1_1"]->as<CategoricalConditionalBatchNorm2d>()->options().eps, 0.8);
  EXPECT_DOUBLE_EQ(
      children["conv_blocks2_1"]->as<CategoricalConditionalBatchNorm2d>()->options().eps, 0.8);
  EXPECT_DOUBLE_EQ(children["conv_blocks2_5"]->as<torch::nn::BatchNorm2d>()->options.eps(), 1e-5);
  EXPECT_FALSE(children["conv_blocks2_5"]->as<torch::nn::BatchNorm2d>()->options.affine());
}

}  // namespace
}  // namespace qimera::generator
