// A tiny, quickly trained teacher on a synthetic data set, for the methods' tests.
#pragma once

#include "qimera/data/dataset.h"
#include "qimera/data/preprocess.h"
#include "qimera/models/classifier.h"

#include <memory>

namespace qimera::methods::testing {

/// `per_class` images of size 1 x size x size per class: a fixed smooth random pattern per class,
/// scaled by a random brightness, plus noise; uint8.
std::shared_ptr<data::TensorDataset> pattern_dataset(int64_t classes, int64_t per_class, int64_t size,
                                                     uint64_t seed);

/// Normalization for pattern_dataset: pixels to roughly zero mean, unit variance.
data::Preprocess pattern_preprocess();

/// ResNet-20 (1 channel, `size` pixels) trained for a few epochs on pattern_dataset; eval mode.
models::Classifier trained_tiny_teacher(int64_t classes, int64_t size);

}  // namespace qimera::methods::testing
