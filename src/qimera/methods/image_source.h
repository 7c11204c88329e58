// Where a data-free method's training images come from: a generator, a pixel-mixing stage over
// another source (Mixup, Cutmix), or a bank of optimized images (ZeroQ). What G and Q minimize on
// them is the objectives' business (objectives.h).
#pragma once

#include "qimera/generator/generator.h"
#include "qimera/generator/mixing.h"
#include "qimera/methods/checkpoint.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <memory>

namespace qimera::methods {

/// A batch of training images in the teacher's (normalized) input space.
struct TrainingBatch {
  at::Tensor images;   // [B, C, S, S]; keeps its graph to the generator when drawn for it
  at::Tensor targets;  // soft labels [B, classes]; undefined for label-free sources (ZAQ)
  // What the generator's objective sees when it is not `images` (a mixing source whose mixing G's
  // loss does not see); undefined otherwise.
  at::Tensor generator_images, generator_targets;
  bool superposed = false;  // Qimera's superposed embeddings
  bool mixed = false;       // pixel-space mixing was applied

  const at::Tensor& images_for_generator() const {
    return generator_images.defined() ? generator_images : images;
  }
  const at::Tensor& targets_for_generator() const {
    return generator_images.defined() ? generator_targets : targets;
  }
};

class ImageSource {
 public:
  virtual ~ImageSource() = default;
  /// A batch of `n` images. With `for_generator` the images keep the graph to the generator's
  /// parameters; without, they are drawn under no-grad.
  virtual TrainingBatch draw(int64_t n, bool for_generator) = 0;
  /// The generator behind the source (trained by the generator objective), or null.
  virtual generator::Generator generator() const { return nullptr; }
  /// Whether batches carry targets.
  virtual bool has_targets() const = 0;
  /// Tensors beyond the generator that a checkpoint must hold.
  virtual void add_state(TrainingState& state) {}
  /// What the source is, for config.json.
  virtual nlohmann::json to_json() const = 0;
};

/// Images from a generator: its latent sampler (superposed with probability se.p) then its forward.
class GeneratorSource : public ImageSource {
 public:
  GeneratorSource(generator::Generator generator, generator::SuperpositionOptions superposition,
                  c10::Device device);
  TrainingBatch draw(int64_t n, bool for_generator) override;
  generator::Generator generator() const override { return generator_; }
  bool has_targets() const override { return generator_->options().uses_labels(); }
  nlohmann::json to_json() const override;

 private:
  generator::Generator generator_;
  generator::SuperpositionOptions superposition_;
  c10::Device device_;
};

/// Mixup or Cutmix over another source's batches (baselines.md section 3): with probability
/// `probability` a batch is mixed with a permutation of itself; targets mix in the same proportion.
/// The mixing is differentiable, so a generator below learns through it. When
/// `generator_sees_mixed` is false, G's objective sees the unmixed batch and Q the mixed one.
struct MixingOptions {
  generator::MixKind kind = generator::MixKind::Mixup;
  double alpha = 1.0;        // lambda ~ Beta(alpha, alpha)
  double probability = 1.0;  // share of mixed batches
  bool generator_sees_mixed = true;
  void validate() const;
};

class MixingSource : public ImageSource {
 public:
  MixingSource(std::unique_ptr<ImageSource> inner, MixingOptions options);
  TrainingBatch draw(int64_t n, bool for_generator) override;
  generator::Generator generator() const override { return inner_->generator(); }
  bool has_targets() const override { return inner_->has_targets(); }
  void add_state(TrainingState& state) override { inner_->add_state(state); }
  nlohmann::json to_json() const override;

 private:
  std::unique_ptr<ImageSource> inner_;
  MixingOptions options_;
};

/// A fixed bank of images (ZeroQ's distilled images): each draw is a random subset without
/// replacement. No targets: an objective that needs labels cannot use it.
class ImageBankSource : public ImageSource {
 public:
  explicit ImageBankSource(at::Tensor bank);
  TrainingBatch draw(int64_t n, bool for_generator) override;
  bool has_targets() const override { return false; }
  void add_state(TrainingState& state) override;
  nlohmann::json to_json() const override;
  at::Tensor& bank() { return bank_; }

 private:
  at::Tensor bank_;
};

}  // namespace qimera::methods
