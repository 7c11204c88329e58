// Lowering: a zoo model (its module tree) into an inference graph (graph.h). The walk follows each
// module's forward() and is checked against it: run_reference() of the graph reproduces the model's
// logits bit for bit for every architecture (tests/deploy).
#pragma once

#include "qimera/deploy/graph.h"
#include "qimera/deploy/quantized_model.h"
#include "qimera/models/classifier.h"

#include <filesystem>
#include <map>
#include <string>

namespace qimera::deploy {

/// Grid integers by layer name ("features.init_block.conv.conv").
using IntegerWeights = std::map<std::string, IntegerWeight>;

/// The integer weights stored in a quantized export (its safetensors file); `model` is the
/// manifest's architecture (for the weights' shapes).
IntegerWeights read_integer_weights(const QuantizedManifest& manifest, const torch::nn::Module& model);

/// Flattens `model` (eval-mode semantics). A layer listed in `integers` takes those integers (the
/// model must compute with exactly their dequantized values, as a loaded export does; checked); a
/// layer with an active weight quantizer otherwise gets them from its current weights, as
/// export_quantized computes them; every other layer stays float.
InferenceGraph lower(const models::ClassifierImpl& model, const data::Preprocess& preprocess,
                     const IntegerWeights& integers = {});

/// The graph of a quantized export: load_quantized() plus the integers of its weights file.
InferenceGraph lower_quantized(const QuantizedManifest& manifest);

/// The graph of a model file: a quantized-model manifest, or a model card (all float), or a run
/// folder holding quantized.json. Errors name the file.
InferenceGraph lower_file(const std::filesystem::path& path);

/// RUN_DIR -> RUN_DIR/quantized.json; a file is returned unchanged. Errors if neither exists.
std::filesystem::path resolve_model_file(const std::filesystem::path& path);

}  // namespace qimera::deploy
