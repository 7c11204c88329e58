// Training a full-precision classifier (the teacher P) on a labelled data set: SGD with Nesterov
// momentum, cosine or multi-step schedule, crop/flip augmentation, a checkpoint every epoch and
// resuming. Writes the trained weights (safetensors) and a model card.
#pragma once

#include "qimera/data/augment.h"
#include "qimera/data/dataset.h"
#include "qimera/data/preprocess.h"
#include "qimera/eval/evaluate.h"
#include "qimera/methods/schedule.h"
#include "qimera/models/classifier.h"

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <memory>
#include <optional>

namespace qimera::methods {

struct TeacherTrainingOptions {
  int64_t epochs = 30;
  int64_t batch_size = 128;
  double lr = 0.1;
  double momentum = 0.9;
  double weight_decay = 5e-4;
  bool nesterov = true;
  LrSchedule schedule{LrSchedule::Kind::Cosine, {}, 0.1};
  data::Augment augment;
  int workers = 2;
  uint64_t seed = 0;
  int64_t eval_every = 1;  // evaluate on the test set every N epochs (and after the last)
  int64_t log_every = 50;  // iterations between progress updates (each costs a device sync)

  void validate() const;
  nlohmann::json to_json() const;
};

struct TeacherTrainingResult {
  int64_t epochs = 0;
  std::optional<eval::Accuracy> test;  // after the final epoch
  std::filesystem::path card;          // <run_dir>/model.json
  double seconds = 0;
};

/// Trains `model` (already on `device`) in place. Files in `run_dir`: config.json, metrics.jsonl
/// (one line per epoch), checkpoint.pt (every epoch), model.safetensors + model.json (model card)
/// and result.json at the end. With `resume`, continues from checkpoint.pt; without it, an existing
/// checkpoint is an error rather than being overwritten.
TeacherTrainingResult train_teacher(models::ClassifierImpl& model,
                                    std::shared_ptr<const data::Dataset> train,
                                    std::shared_ptr<const data::Dataset> test,
                                    const data::Preprocess& preprocess,
                                    const TeacherTrainingOptions& options,
                                    const std::filesystem::path& run_dir, bool resume,
                                    c10::Device device,
                                    const nlohmann::json& provenance = nlohmann::json::object());

}  // namespace qimera::methods
