// The paper's Figure 3: P's penultimate features of real images, ordinary generated samples and
// superposed ones, projected on the first two principal components of their union, with the path
// between two classes as lambda sweeps; plotted with gnuplot.
#pragma once

#include "qimera/analysis/run_models.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace qimera::analysis {

/// Projection of `x` [N, d] on its first two principal components (centred; `fit` rows select the
/// points the components are fitted on, all when empty): coordinates [N, 2] and the fitted points'
/// variance share of each component.
struct Pca2d {
  at::Tensor coordinates;
  double explained[2] = {0, 0};
};
Pca2d pca_2d(const at::Tensor& x, const at::Tensor& fit = at::Tensor());

struct PcaPoint {
  std::string kind;  // "real", "generated", "superposed", "path"
  int64_t label = -1;  // class (real: true; generated: intended; superposed: -1; path: step)
  double x = 0, y = 0;
};

struct PcaOptions {
  int64_t per_kind = 500;  // points per kind
  int64_t path_steps = 20;
  uint64_t seed = 0;
};

struct PcaResult {
  std::vector<PcaPoint> points;
  double explained[2] = {0, 0};
};

/// `real_images` / `real_labels` may be undefined (no data set given).
PcaResult feature_pca(RunModels& run, const at::Tensor& real_images, const at::Tensor& real_labels,
                      const PcaOptions& options);

std::string pca_csv(const PcaResult& result);

/// Writes `png` and `svg` with gnuplot (a scatter: classes in colour, superposed samples black,
/// the path as a line). Throws an Error when gnuplot is missing or fails, naming it.
void plot_pca(const PcaResult& result, const std::string& title, const std::filesystem::path& png,
              const std::filesystem::path& svg);

}  // namespace qimera::analysis
