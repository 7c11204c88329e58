// A small sample of a data set that stands for all of it: for a quick evaluation (--limit,
// --test-limit) and the real points of the feature PCA. A prefix would not do: image folders are
// read class by class, so the first 500 CIFAR-10 test images are all airplanes.
#pragma once

#include "qimera/data/dataset.h"

#include <cstdint>
#include <memory>

namespace qimera::data {

/// min(n, size) examples spread evenly over `parent`: indices floor(i * size / n), in order, so
/// every stretch of the set (every class of a class-ordered folder) gets its share. n >= size gives
/// every example; n < 0 is an Error.
std::shared_ptr<const Dataset> spread_subset(std::shared_ptr<const Dataset> parent, int64_t n);

}  // namespace qimera::data
