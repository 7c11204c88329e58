// The contract between a data set and a model: images that, once preprocessed, have the channels
// and size the model card states. Checked on the first image before any batch is assembled, so
// that a mismatch is one clear error rather than a LibTorch shape error, or a model run on a
// 4000 x 4000 image that takes gigabytes.
#pragma once

#include "qimera/data/dataset.h"
#include "qimera/data/preprocess.h"
#include "qimera/models/model_spec.h"

namespace qimera::eval {

/// Throws qimera::Error naming the data set when it is empty or its first image, after
/// `preprocess`'s geometry, is not [spec.in_channels, spec.image_size, spec.image_size].
void require_model_input(const data::Dataset& dataset, const data::Preprocess& preprocess,
                         const models::ModelSpec& spec);

}  // namespace qimera::eval
