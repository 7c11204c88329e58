#include "qimera/analysis/sample_grid.h"

#include "qimera/analysis/boundary_metrics.h"
#include "qimera/core/error.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>

#include <algorithm>

namespace qimera::analysis {

at::Tensor tile_images(const at::Tensor& images, int64_t per_row) {
  require(images.dim() == 4 && images.scalar_type() == at::kByte && per_row >= 1,
          "tile_images needs uint8 [N, C, H, W] images and a positive row length");
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  const int64_t rows = std::max<int64_t>(1, (n + per_row - 1) / per_row);
  auto grid = at::full({c, rows * (h + 2) + 2, per_row * (w + 2) + 2}, 128, at::kByte);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t top = 2 + (i / per_row) * (h + 2), left = 2 + (i % per_row) * (w + 2);
    grid.slice(1, top, top + h).slice(2, left, left + w).copy_(images[i]);
  }
  return grid;
}

at::Tensor sample_grid(RunModels& run, const GridOptions& options) {
  require(options.per_row >= 1 && options.max_classes >= 1 && options.pair_rows >= 0,
          "grid sizes must be positive");
  const c10::NoGradGuard no_grad;
  const int64_t classes = std::min(run.num_classes(), options.max_classes);
  const int64_t dim = run.generator->options().latent_dim;
  auto cpu = at::detail::createCPUGenerator(options.seed);
  const auto per_row = options.per_row;
  at::Tensor tiles;  // [rows * per_row, C, H, W] in [0, 255]
  if (run.labelled()) {
    // Class-major rows, generated together so that batch statistics see every class, as in training.
    const auto batch = ordinary_batch(at::arange(classes).repeat_interleave(per_row).to(run.device),
                                      at::randn({classes * per_row, dim}, cpu).to(run.device),
                                      run.num_classes());
    tiles = to_pixels(run.generator->forward(batch), run.preprocess);
  } else {
    // No intended classes: draw several per slot and sort them by what the teacher sees.
    const auto images = run.generator->forward(
        ordinary_batch(at::Tensor(), at::randn({4 * classes * per_row, dim}, cpu).to(run.device), classes));
    const auto predicted = run.teacher->forward(images).argmax(1).cpu();
    const auto pixels = to_pixels(images, run.preprocess);
    tiles = at::full({classes * per_row, pixels.size(1), pixels.size(2), pixels.size(3)}, 128, at::kByte);
    std::vector<int64_t> filled(classes, 0);
    for (int64_t i = 0; i < images.size(0); ++i) {
      const int64_t c = predicted[i].item<int64_t>();
      if (c < classes && filled[c] < per_row) tiles[c * per_row + filled[c]++].copy_(pixels[i]);
    }
  }
  if (run.superposable() && options.pair_rows > 0 && run.num_classes() >= 2) {
    std::vector<at::Tensor> paths;
    const auto z = at::zeros({dim}, at::TensorOptions().device(run.device));
    for (int64_t r = 0; r < std::min(options.pair_rows, run.num_classes() - 1); ++r) {
      paths.push_back(run.generator->forward(superposed_path(r, r + 1, z, per_row - 1, run.num_classes())));
    }
    if (per_row >= 2) tiles = at::cat({tiles, to_pixels(at::cat(paths), run.preprocess)});
  }
  return tile_images(tiles, per_row);
}

}  // namespace qimera::analysis
