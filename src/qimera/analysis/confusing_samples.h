// The paper's Table 1: real images the teacher finds confusing (its highest softmax probability
// below a threshold) against as many that it does not, to mix into Q's batches of a data-free run
// (the methods' --real-samples). The paper takes 15 per class of CIFAR-100 at 0.25; a confident
// teacher on 10 classes may have far fewer, so the counts are part of the result.
#pragma once

#include "qimera/models/classifier.h"

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <vector>

namespace qimera::data {
class BatchLoader;
}

namespace qimera::analysis {

inline const std::vector<double> kSurveyThresholds{0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};

struct SelectionOptions {
  double max_confidence = 0.25;  // confusing: highest softmax probability below this
  int64_t per_class = 15;        // at most this many confusing images per (true) class
  uint64_t seed = 0;             // which ones, when a class has more
};

struct Selection {
  int64_t scanned = 0;
  std::vector<int64_t> available;  // confusing images per class in the whole set
  /// How many images of the set fall below each of kSurveyThresholds: how the choice of threshold
  /// changes the pool (a confident teacher on few classes has almost none below 0.25).
  std::vector<int64_t> below_threshold;
  // Unconfusing: highest probability at least max_confidence, drawn at random per class, as many
  // per class as were taken confusing ones (so both sets have the same class balance).
  at::Tensor confusing_images, confusing_labels, unconfusing_images, unconfusing_labels;

  nlohmann::json to_json(const SelectionOptions& options) const;
};

/// Scans every batch of `loader` (images preprocessed as the teacher's input) once.
Selection select_confusing(models::ClassifierImpl& teacher, data::BatchLoader& loader,
                           const SelectionOptions& options);

/// A --real-samples file: safetensors with "images" and int64 "labels".
void write_real_samples(const std::filesystem::path& path, const at::Tensor& images,
                        const at::Tensor& labels);

}  // namespace qimera::analysis
