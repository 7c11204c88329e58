// A tiny, quickly trained teacher on a synthetic data set, for the methods' tests.
#pragma once

#include "qimera/data/dataset.h"
#include "qimera/data/loader.h"
#include "qimera/data/preprocess.h"
#include "qimera/models/classifier.h"

#include <memory>

namespace qimera::methods::support {

/// `per_class` images of size 1 x size x size per class: a fixed smooth random pattern per class,
/// scaled by a random brightness, plus noise; uint8.
std::shared_ptr<data::TensorDataset> pattern_dataset(int64_t classes, int64_t per_class, int64_t size,
                                                     uint64_t seed);

/// Normalization for pattern_dataset: pixels to roughly zero mean, unit variance.
data::Preprocess pattern_preprocess();

/// ResNet-20 (1 channel, `size` pixels) trained for a few epochs on pattern_dataset; eval mode.
/// Shared within a test program: clone it before changing it.
models::Classifier trained_tiny_teacher(int64_t classes, int64_t size);
/// The same, trained anew.
models::Classifier train_tiny_teacher(int64_t classes, int64_t size);

/// The shape most method tests use: 10 classes of 1 x 16 x 16 images.
constexpr int64_t kClasses = 10;
constexpr int64_t kSize = 16;

/// trained_tiny_teacher(kClasses, kSize).
const models::Classifier& teacher();

/// Held-out patterns (pattern_dataset(kClasses, per_class, kSize, seed 99)), in order, no workers.
data::BatchLoader pattern_test_loader(int64_t per_class, int64_t batch_size);

}  // namespace qimera::methods::support

#include "qimera/methods/method.h"

#include <filesystem>

namespace qimera::methods::support {

/// Runs the registry's `method` with its defaults patched by `options` (a flat JSON object) on
/// `teacher` in `dir` (a new run, or resumed), evaluating on `test` when given.
MethodOutcome run_method_named(const std::string& method, const nlohmann::json& options,
                               models::Classifier teacher, const std::filesystem::path& dir,
                               data::BatchLoader* test, bool resume = false,
                               c10::Device device = c10::kCPU);

}  // namespace qimera::methods::support
