// Helpers of the deploy tests: quantized exports of every architecture, and ONNX Runtime (through
// Node and scripts/onnx-run.js) when it is installed.
#pragma once

#include "qimera/data/preprocess.h"
#include "qimera/deploy/onnx_export.h"
#include "qimera/models/classifier.h"
#include "qimera/quant/convert.h"

#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>
#include <vector>

namespace qimera::deploy::support {

/// One architecture of the deploy tests: a zoo preset at a tiny input size, or the bundled teacher.
struct TestModel {
  std::string name;
  models::Classifier model;  // full precision, eval mode
  data::Preprocess preprocess;
};

/// The five zoo presets (random weights with randomized batch norms, inputs of 16 or 32 pixels) and
/// the bundled Fashion-MNIST ResNet-20.
std::vector<std::string> test_model_names();
TestModel test_model(const std::string& name);

/// Random uint8 images [n, C, S, S] for `model` (seeded).
at::Tensor random_images(const models::ClassifierImpl& model, int64_t n, uint64_t seed);

/// Converts a copy of `model` by `config`, observes min/max ranges on random images, fixes them and
/// writes the integer export (once per process and configuration); returns the manifest path. Read
/// it, do not change it.
std::filesystem::path quantized_export(const TestModel& model, const quant::QuantConfig& config);

/// "4w4a" -> QuantConfig with those bits (and optional overrides).
quant::QuantConfig config_of(int weight_bits, int act_bits, std::vector<std::string> overrides = {});

/// Whether node and onnxruntime-node are installed; `why` says what is missing. A test skips
/// without them, or fails when QIMERA_REQUIRE_ONNXRUNTIME=1 (scripts/test.sh sets it).
bool onnxruntime_available(std::string* why);

/// Logits of ONNX Runtime for uint8 images.
at::Tensor onnxruntime_logits(const std::filesystem::path& model, const at::Tensor& images,
                              const std::filesystem::path& work_dir);

/// Comparison of two logit batches.
struct Deviation {
  double max_abs = 0;  // max |a - b|
  double max_rel = 0;  // max |a - b| / max |b| (relative to the reference's largest logit)
  double top1_agreement = 0;  // share of samples with the same argmax
};
Deviation deviation(const at::Tensor& logits, const at::Tensor& reference);

}  // namespace qimera::deploy::support

// Skips the current test when ONNX Runtime is missing, or fails when it is required.
#define QIMERA_REQUIRE_ORT()                                                              \
  do {                                                                                    \
    std::string why_;                                                                     \
    if (!::qimera::deploy::onnx_export_available()) GTEST_SKIP() << "built without ONNX";  \
    if (!::qimera::deploy::support::onnxruntime_available(&why_)) {                       \
      if (std::getenv("QIMERA_REQUIRE_ONNXRUNTIME")) FAIL() << why_;                      \
      GTEST_SKIP() << why_;                                                               \
    }                                                                                     \
  } while (0)
