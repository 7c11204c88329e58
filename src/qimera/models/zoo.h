// The model zoo: one factory for every architecture, a visitor over all of them (tests cover every
// variant), and deep copies (Q starts as an exact copy of P).
#pragma once

#include "qimera/models/classifier.h"

#include <functional>

namespace qimera::models {

/// Builds a freshly initialised model. Example: auto p = build_model(preset_spec("resnet20_cifar10"));
Classifier build_model(const ModelSpec& spec);

/// Calls `fn` with every preset model name (resnet20_cifar10, ..., mobilenetv2_w1).
void for_each_preset(const std::function<void(const std::string& name, const ModelSpec&)>& fn);

/// An independent copy: same spec, same quantizer settings, copies of every parameter and buffer,
/// on the same device, in the same train/eval mode.
Classifier clone_model(const ClassifierImpl& model);

/// Copies every parameter and buffer value of `from` into `to` (same architecture; quantizer
/// buffers present in both).
void copy_state(const torch::nn::Module& from, torch::nn::Module& to);

}  // namespace qimera::models
