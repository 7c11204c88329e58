#include "qimera/methods/image_source.h"

#include "qimera/core/error.h"

#include <ATen/ATen.h>

namespace qimera::methods {

GeneratorSource::GeneratorSource(generator::Generator generator,
                                 generator::SuperpositionOptions superposition, c10::Device device)
    : generator_(std::move(generator)), superposition_(superposition), device_(device) {
  superposition_.validate();
}

TrainingBatch GeneratorSource::draw(int64_t n, bool for_generator) {
  const auto latents = generator_->sample(n, superposition_, device_);
  TrainingBatch batch;
  batch.superposed = latents.superposed();
  batch.targets = latents.targets;
  if (for_generator) {
    batch.images = generator_->forward(latents);
  } else {
    at::NoGradGuard no_grad;
    batch.images = generator_->forward(latents);
  }
  return batch;
}

nlohmann::json GeneratorSource::to_json() const {
  return {{"kind", "generator"},
          {"generator", generator_->options().to_json()},
          {"superposition", superposition_.to_json()}};
}

void MixingOptions::validate() const {
  require(alpha > 0, "--mix-alpha must be positive (lambda ~ Beta(alpha, alpha)), got {}", alpha);
  require(probability >= 0 && probability <= 1, "--mix-prob must be in [0, 1], got {}", probability);
}

MixingSource::MixingSource(std::unique_ptr<ImageSource> inner, MixingOptions options)
    : inner_(std::move(inner)), options_(options) {
  options_.validate();
  require(inner_->has_targets(), "mixing needs a source with labels");
}

TrainingBatch MixingSource::draw(int64_t n, bool for_generator) {
  auto batch = inner_->draw(n, for_generator);
  // One host draw per batch, as the references do (np.random.rand(1) < prob), on LibTorch's
  // seeded CPU generator.
  const bool mix = options_.probability >= 1.0 ||
                   at::rand({1}, at::TensorOptions().dtype(at::kDouble)).item<double>() <
                       options_.probability;
  if (!mix) return batch;
  const auto mixed = generator::sample_mix(options_.kind, batch.images, batch.targets, options_.alpha);
  if (!options_.generator_sees_mixed) {
    batch.generator_images = batch.images;
    batch.generator_targets = batch.targets;
  }
  batch.images = mixed.images;
  batch.targets = mixed.targets;
  batch.mixed = true;
  return batch;
}

nlohmann::json MixingSource::to_json() const {
  return {{"kind", std::string(generator::to_string(options_.kind))},
          {"alpha", options_.alpha},
          {"probability", options_.probability},
          {"generator_sees_mixed", options_.generator_sees_mixed},
          {"over", inner_->to_json()}};
}

ImageBankSource::ImageBankSource(at::Tensor bank) : bank_(std::move(bank)) {
  require(bank_.defined() && bank_.dim() == 4 && bank_.size(0) >= 1,
          "an image bank needs images [N, C, H, W]");
}

TrainingBatch ImageBankSource::draw(int64_t n, bool for_generator) {
  require(!for_generator, "an image bank has no generator to train");
  require(n >= 1 && n <= bank_.size(0), "a batch of {} from a bank of {} images", n, bank_.size(0));
  const auto pick = at::randperm(bank_.size(0), at::TensorOptions().dtype(at::kLong)).slice(0, 0, n);
  TrainingBatch batch;
  batch.images = bank_.index_select(0, pick.to(bank_.device()));
  return batch;
}

void ImageBankSource::add_state(TrainingState& state) { state.tensors.emplace_back("image_bank", &bank_); }

nlohmann::json ImageBankSource::to_json() const {
  return {{"kind", "image_bank"}, {"images", bank_.size(0)}};
}

}  // namespace qimera::methods
