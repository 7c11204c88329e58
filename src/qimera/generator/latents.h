// Generator inputs: class labels, noise and (for superposed batches) mixing weights, with the soft
// targets the teacher and the quantized model are trained against (method.md sections 2 and 3).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <nlohmann/json_fwd.hpp>

namespace qimera::generator {

/// Superposed embeddings (SE): with probability `p` a whole batch is superposed, each sample mixing
/// `k` classes. p = 0 gives the ordinary GDFQ batches only.
/// Example: SuperpositionOptions se; se.k = 10; se.p = 0.4; se.validate();
struct SuperpositionOptions {
  int64_t k = 2;   // classes mixed per superposed sample (repeats allowed)
  double p = 0.0;  // probability that a batch is superposed

  /// Throws qimera::Error when p is outside [0, 1] or when k < 1 while superposition is on (p > 0).
  void validate() const;
  nlohmann::json to_json() const;
  /// Missing keys keep their defaults; unknown keys are an error (they are usually typos).
  static SuperpositionOptions from_json(const nlohmann::json& json);
};

/// One batch of generator inputs and its targets. Ordinary: labels int64 [B], noise [B, D], no mix.
/// Superposed: labels int64 [B, K], noise [B, K, D], mix [B, K] (each row a convex combination).
/// Label-free (ZAQ's generator): noise [B, D] only; labels, mix and targets undefined.
struct LatentBatch {
  at::Tensor labels;
  at::Tensor noise;    // N(0, 1)
  at::Tensor mix;      // undefined for ordinary batches; lambda = softmax over K of N(0, 1) draws
  at::Tensor targets;  // soft targets [B, C]: one-hot, or sum_k lambda_k one-hot(y_k)

  bool superposed() const { return labels.defined() && labels.dim() == 2; }
  int64_t batch_size() const { return noise.size(0); }
  /// Classes mixed per sample: K for superposed batches, 1 for ordinary ones.
  int64_t k() const { return superposed() ? labels.size(1) : 1; }
  /// The same batch with every tensor on `device`.
  LatentBatch to(c10::Device device) const;
};

/// Draws one batch for a generator with `num_classes` classes and embedding width `latent_dim`.
/// The ordinary / superposed decision is drawn from LibTorch's default CPU generator and read as a
/// host number (no device synchronisation); it is drawn for every batch, even with p = 0 or 1, so
/// the random stream does not depend on p. Noise, labels and mix are then drawn on `device` from
/// that device's default generator, in the reference's order (noise, labels, mix): seed with
/// torch::manual_seed and checkpoint the generator states to resume a run.
/// Example: auto batch = sample_latents(200, 100, 64, se, torch::kCPU);
LatentBatch sample_latents(int64_t batch, int64_t num_classes, int64_t latent_dim,
                           const SuperpositionOptions& superposition, c10::Device device);

/// Soft targets [B, num_classes] on the labels' device (float32, or the mix's dtype):
/// one-hot(labels) for labels [B]; sum_k mix[:, k] one-hot(labels[:, k]) for labels [B, K]
/// (repeated labels add up).
at::Tensor soft_targets(const at::Tensor& labels, const at::Tensor& mix, int64_t num_classes);

}  // namespace qimera::generator
