// A finished (or interrupted) data-free run, rebuilt for analysis: the teacher P it was trained
// against and its generator G as the last checkpoint left it.
#pragma once

#include "qimera/data/preprocess.h"
#include "qimera/deploy/model_card.h"
#include "qimera/generator/generator.h"
#include "qimera/models/classifier.h"

#include <c10/core/Device.h>

#include <filesystem>
#include <string>

namespace qimera::analysis {

struct RunModels {
  std::string method;        // the run's --method
  models::Classifier teacher;  // eval mode
  generator::Generator generator{nullptr};  // training mode, as it was trained (batch statistics)
  data::Preprocess preprocess;     // the teacher's, to show images as it saw them
  c10::Device device = c10::kCPU;

  int64_t num_classes() const { return teacher->spec().num_classes; }
  /// Whether G takes labels through an embedding, so its embeddings can be superposed (Qimera's).
  bool superposable() const;
  /// Whether G's images have intended classes at all (ZAQ's generator has none).
  bool labelled() const { return generator->options().uses_labels(); }
};

/// The teacher's model card of the run in `dir`: `model` when given, else the one its config.json
/// records. Errors name the folder.
deploy::ModelCard run_teacher_card(const std::filesystem::path& dir, const std::string& model);

/// Reads `dir`'s config.json, rebuilds the method's trainer around the teacher (the model recorded
/// in the run's provenance, or `model` when given: a run folder moved elsewhere) and restores
/// checkpoint.pt into it. Errors name the folder and say what is missing.
RunModels load_run_models(const std::filesystem::path& dir, const std::string& model,
                          c10::Device device);

/// Images as the teacher's preprocessing would have produced them, back to uint8 pixels [N, C, H, W]
/// (x * std + mean, clamped to [0, 1], rounded).
at::Tensor to_pixels(const at::Tensor& images, const data::Preprocess& preprocess);

}  // namespace qimera::analysis
