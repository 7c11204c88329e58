// Model cards: the JSON description that travels with a weights file (architecture, preprocessing,
// class names, provenance), so that a model can be evaluated, quantized and deployed without
// repeating its settings on every command line.
//
//   {"format": "qimera-model/1", "model": {"arch": "resnet20", "num_classes": 10, ...},
//    "weights": "teacher.safetensors", "preprocess": {...}, "class_names": [...], "provenance": {...}}
#pragma once

#include "qimera/data/preprocess.h"
#include "qimera/io/state_dict.h"
#include "qimera/models/classifier.h"

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace qimera::deploy {

struct ModelCard {
  models::ModelSpec spec;
  std::filesystem::path weights;  // absolute, or relative to the working directory
  data::Preprocess preprocess;
  std::vector<std::string> class_names;  // may be empty
  nlohmann::json provenance = nlohmann::json::object();
};

/// Reads a card; its weights path is resolved relative to the card's folder.
ModelCard read_model_card(const std::filesystem::path& path);

/// Writes a card atomically, storing the weights path relative to the card's folder when possible.
void write_model_card(const std::filesystem::path& path, const ModelCard& card);

/// A card for a pytorchcv preset ("resnet20_cifar10", ...) and a weights file, with the preset's
/// usual preprocessing (CIFAR-10, CIFAR-100 or ImageNet).
ModelCard preset_card(const std::string& preset, const std::filesystem::path& weights);

/// `model` is a card (a path ending in .json) or a preset name; `weights` is required with a preset
/// and overrides the card's otherwise.
ModelCard resolve_model(const std::string& model, const std::filesystem::path& weights = {});

/// Builds the card's model, loads its weights (strict: every key must match) and moves it to
/// `device`, in eval mode. Weights holding NaN or infinite values are an error naming the tensor,
/// or a warning with NonFinite::Warn (the command line's --allow-nonfinite).
models::Classifier load_classifier(const ModelCard& card, c10::Device device, bool strict = true,
                                   io::NonFinite nonfinite = io::NonFinite::Refuse);

}  // namespace qimera::deploy
