// Integer export of a fake-quantized model, and loading it back.
//
// The weights file (safetensors) holds, for every quantized conv / linear layer, its integer weights
// ("<layer>.weight_q": int8, or two per byte at 4 bits and below, see quant/integer_pack.h), the
// per-output-channel scale and zero point ("<layer>.weight_scale", "<layer>.weight_zero_point",
// float32: real = (q + zero_point) / scale), for every quantized activation its range
// ("<layer>.act_range": [lo, hi]), and every other tensor (biases, batch norm) in float32. A JSON
// manifest next to it names the architecture, the bits of every layer, the preprocessing and the
// model it came from. Loading it reproduces the fake-quantized model's logits exactly.
#pragma once

#include "qimera/data/preprocess.h"
#include "qimera/io/state_dict.h"
#include "qimera/models/classifier.h"
#include "qimera/quant/convert.h"

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <array>
#include <filesystem>
#include <map>
#include <string>

namespace qimera::deploy {

struct QuantizedManifest {
  models::ModelSpec spec;
  quant::QuantConfig config;
  std::vector<quant::LayerQuantization> layers;
  // Each quantized activation's "range" as the manifest states it. The weights file's act_range is
  // what runs; load_quantized refuses the pair when they disagree (an edited manifest would
  // otherwise be ignored without a word).
  std::map<std::string, std::array<double, 2>> act_ranges;
  data::Preprocess preprocess;
  std::filesystem::path weights;       // resolved against the manifest's folder
  std::filesystem::path source_model;  // the full-precision model card, if known
  nlohmann::json provenance = nlohmann::json::object();
};

struct ExportSummary {
  std::filesystem::path manifest, weights;
  int64_t file_bytes = 0;     // the weights file
  int64_t float32_bytes = 0;  // the same model's parameters and buffers in float32
  double ratio() const {
    return float32_bytes > 0 ? static_cast<double>(file_bytes) / static_cast<double>(float32_bytes) : 0;
  }
};

/// Writes `<manifest stem>.safetensors` and the manifest, both atomically. The activation ranges
/// are read as they are now (fix them first).
ExportSummary export_quantized(const models::ClassifierImpl& model, const quant::QuantConfig& config,
                               const data::Preprocess& preprocess,
                               const std::filesystem::path& manifest_path,
                               const std::filesystem::path& source_model = {},
                               const nlohmann::json& provenance = nlohmann::json::object());

/// Whether `path` is a quantized-model manifest (as opposed to a model card).
bool is_quantized_manifest(const std::filesystem::path& path);

QuantizedManifest read_quantized_manifest(const std::filesystem::path& path);

/// Rebuilds the model: dequantized integer weights (weight quantizers recorded but switched off:
/// the weights already lie on the grid) and fixed activation ranges; eval mode, on `device`.
/// Tensors with NaN or infinite values, scales that are not positive and inverted activation
/// ranges are an error naming the tensor, or a warning with NonFinite::Warn.
models::Classifier load_quantized(const QuantizedManifest& manifest, c10::Device device,
                                  io::NonFinite nonfinite = io::NonFinite::Refuse);

/// Gives the activation quantizers of `model` (loaded by load_quantized) whose layer names match one
/// of `patterns` (shell globs; none: every quantized activation) the ranges that `source` states.
/// A diagnostic: two runs of one teacher differ in their weights and in the activation ranges
/// observed on their images; evaluating one run's weights with the other's ranges tells how much
/// of their accuracy gap the ranges explain. Errors, naming the file, when the architectures
/// differ, a pattern matches no quantized activation, or a matched layer is float in `source`.
/// Returns the names of the layers changed, in module order.
std::vector<std::string> adopt_act_ranges(models::ClassifierImpl& model,
                                          const QuantizedManifest& source,
                                          const std::filesystem::path& source_path,
                                          const std::vector<std::string>& patterns = {});

}  // namespace qimera::deploy
