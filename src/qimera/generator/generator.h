// The generators of GDFQ, Qimera and ZAQ (method.md sections 2 to 4, baselines.md sections 2 and 4):
// one ACGAN-like convolutional body behind three kinds of input stage. Qimera's: class embeddings
// plus noise, an embedding normalizer, optional disentanglement mapping (DM) and superposed
// embeddings (SE). GDFQ's as published: noise times the class embedding. ZAQ's: noise only, no
// labels. Categorical conditional batch norm carries the labels for ImageNet-size images. The named
// architectures are in generator/architecture.h.
#pragma once

#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "qimera/generator/conditional_batch_norm.h"
#include "qimera/generator/latents.h"

namespace qimera::generator {

/// How the class embedding table E (C x D) starts. Extracted = EEI: the teacher's last FC weight,
/// installed by GeneratorImpl::init_embeddings_from. ExtractedScaled: that weight divided by its
/// root mean square (not in the paper: tests whether EEI's rows are too small beside the noise).
/// Random = N(0, 1), as torch.nn.Embedding.
enum class EmbeddingInit { Random, Extracted, ExtractedScaled };

/// "random" / "extracted" / "extracted-scaled".
std::string_view to_string(EmbeddingInit init);
/// Parses the names above; anything else is an Error that lists them.
EmbeddingInit parse_embedding_init(std::string_view text);

/// How noise and labels become the body's input.
enum class LatentInput {
  Embedding,  // Qimera: normalize(E[y] + z), then DM, then superposition
  Product,    // GDFQ (CIFAR) as published: E[y] * z, no normalization
  Noise,      // z alone: ZAQ (no labels), or GDFQ's ImageNet generator (labels only through CBN)
};
std::string_view to_string(LatentInput input);
LatentInput parse_latent_input(std::string_view text);

/// Example: GeneratorOptions o(100, 32, 3, 64); o.embedding_init = EmbeddingInit::Extracted;
struct GeneratorOptions {
  GeneratorOptions(int64_t num_classes, int64_t image_size, int64_t channels, int64_t latent_dim)
      : num_classes(num_classes),
        image_size(image_size),
        channels(channels),
        latent_dim(latent_dim) {}

  int64_t num_classes;       // C
  int64_t image_size;        // S, divisible by 4 (the body upsamples S/4 twice)
  int64_t channels;          // image channels
  int64_t latent_dim;     // D: noise (and embedding) width; the teacher's feature width for EEI
  LatentInput input = LatentInput::Embedding;
  // eps of the body's second and third batch norms: 0.8 in GDFQ / Qimera (`BatchNorm2d(128, 0.8)`
  // passes eps), 1e-5 in ZAQ.
  double body_eps = 0.8;
  bool disentangle = false;  // DM: Linear(D -> disentangle_dim) after the normalizer
  // d: the reference uses 100 for every network; the paper says 64 for CIFAR.
  int64_t disentangle_dim = 100;
  bool conditional_bn = false;  // categorical conditional BN body (ImageNet-size networks)
  EmbeddingInit embedding_init = EmbeddingInit::Random;
  // Frozen embeddings get requires_grad = false. (The reference ignores its freeze flag without
  // EEI; here it also freezes random embeddings.)
  bool freeze_embeddings = false;

  /// Width of the body's input: d with DM, D without.
  int64_t input_width() const { return disentangle ? disentangle_dim : latent_dim; }
  /// Whether samples have labels (an embedding, or conditional batch norm, uses them).
  bool uses_labels() const { return input != LatentInput::Noise || conditional_bn; }
  /// Side of the body's first feature map, S / 4.
  int64_t init_size() const { return image_size / 4; }

  /// Throws qimera::Error with an actionable message.
  void validate() const;
  nlohmann::json to_json() const;
  /// The four sizes are required; other keys default; unknown keys are an error. Validates.
  static GeneratorOptions from_json(const nlohmann::json& json);
};

/// The embedding normalizer (a batch norm without affine and without running statistics, eps 1e-5,
/// as the reference applies it): for x [B, D] each row is standardized over its own D entries; for
/// x [B, K, D] each k-slice is standardized over all its B x D entries together. Biased variance.
/// Example: auto g = normalize_embeddings(E.index_select(0, y) + z);
at::Tensor normalize_embeddings(const at::Tensor& x, double eps = 1e-5);

/// The generator. Always used in training mode (batch statistics in every batch norm), as the
/// reference. Parameter and buffer names equal the reference's state dict (label_emb, fc_reducer,
/// l1.0, conv_blocks0.0 / conv_blocks1.* / conv_blocks2.* for the plain body, conv_blocks0_0 ...
/// conv_blocks2_5 for the conditional one), so checkpoints can be exchanged with it.
/// Example: Generator g(GeneratorOptions(10, 32, 3, 64));
///          auto images = g->forward(sample_latents(64, 10, 64, se, torch::kCPU));
class GeneratorImpl : public torch::nn::Module {
 public:
  explicit GeneratorImpl(GeneratorOptions options);

  /// Images [B, channels, S, S] for a batch drawn by sample() (or built by hand).
  at::Tensor forward(const LatentBatch& batch);

  /// Draws `n` inputs on `device`: labels, noise, mix and soft targets by sample_latents when the
  /// generator uses labels (superposed with probability se.p, which must be 0 unless the input is
  /// an Embedding), else noise alone [n, D] from the device's default generator.
  LatentBatch sample(int64_t n, const SuperpositionOptions& se, c10::Device device) const;

  /// The body's input [B, input_width()]. Embedding: sum_k lambda_k M(normalize(E[y_k] + z_k)), or
  /// M(normalize(E[y] + z)) for an ordinary batch (M = DM, or the identity without DM). Product:
  /// E[y] * z. Noise: z.
  at::Tensor embed(const LatentBatch& batch);

  /// EEI: copies the teacher's last FC weight [C, D] into E (converted to E's dtype and device).
  /// Requires options().embedding_init to be Extracted or ExtractedScaled (which also scales the
  /// weight to a root mean square of 1), so the recorded configuration stays true.
  void init_embeddings_from(const at::Tensor& fc_weight);

  const GeneratorOptions& options() const { return options_; }

  /// The class embedding table E [C, D] (undefined for a Noise input).
  at::Tensor embeddings() const { return label_emb_ ? label_emb_->weight : at::Tensor(); }

 private:
  void check_batch(const LatentBatch& batch) const;
  at::Tensor body_norm(int index, const at::Tensor& x, const LatentBatch& batch);

  GeneratorOptions options_;
  torch::nn::Embedding label_emb_{nullptr};  // null for a Noise input
  torch::nn::Linear fc_reducer_{nullptr};  // DM; null without it
  torch::nn::Linear l1_{nullptr};
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, conv3_{nullptr};
  // The three normalizations before the last one: plain BN, or conditional BN (one of each is
  // null).
  torch::nn::BatchNorm2d bn_[3] = {nullptr, nullptr, nullptr};
  CategoricalConditionalBatchNorm2d cbn_[3] = {nullptr, nullptr, nullptr};
  torch::nn::BatchNorm2d bn_out_{nullptr};  // BN(channels, affine = false)
};
TORCH_MODULE(Generator);

}  // namespace qimera::generator
