// The paper's Figure 4: generated images, one row per class, as the teacher's preprocessing shows
// them; for Qimera's generator also rows that sweep the superposition between two classes.
#pragma once

#include "qimera/analysis/run_models.h"

#include <cstdint>
#include <string>

namespace qimera::analysis {

struct GridOptions {
  int64_t per_row = 10;      // images per row (lambda steps in a pair row)
  int64_t max_classes = 10;  // the first classes when there are more
  int64_t pair_rows = 4;     // rows (0,1), (1,2), ... sweeping lambda 0 -> 1 at z = 0
  uint64_t seed = 0;
};

/// Tiles `images` uint8 [N, C, H, W] into rows of `per_row` with a 2-pixel grey border:
/// uint8 [C, rows * (H + 2) + 2, per_row * (W + 2) + 2]. Missing tiles stay grey.
at::Tensor tile_images(const at::Tensor& images, int64_t per_row);

/// The grid as uint8 [C, H, W]: class rows (ordinary samples; for a generator without classes,
/// samples grouped by the teacher's predicted class), then pair rows for superposable generators.
at::Tensor sample_grid(RunModels& run, const GridOptions& options);

}  // namespace qimera::analysis
