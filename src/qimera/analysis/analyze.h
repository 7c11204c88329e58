// `qimera analyze`: the paper's views of one data-free run, written into its folder (analysis/):
// the sample grid (Figure 4), the feature-space PCA (Figure 3) and the boundary metrics (Table 5).
#pragma once

#include "qimera/analysis/boundary_metrics.h"
#include "qimera/analysis/feature_pca.h"
#include "qimera/analysis/sample_grid.h"

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace qimera::analysis {

struct AnalyzeOptions {
  std::string model;  // overrides the run's recorded teacher card
  std::filesystem::path out;  // default: RUN_DIR/analysis
  GridOptions grid;
  BoundaryOptions boundary;
  PcaOptions pca;
  bool plot = true;  // PCA plot with gnuplot (the CSV is always written)
};

struct AnalyzeReport {
  std::filesystem::path out;
  std::vector<BoundaryRow> boundary;
  PcaResult pca;
  nlohmann::json summary;  // what analysis.json holds
};

/// Real images (preprocessed as the teacher's input) and labels for the PCA may be undefined.
AnalyzeReport analyze_run(const std::filesystem::path& run_dir, const AnalyzeOptions& options,
                          c10::Device device, const at::Tensor& real_images = at::Tensor(),
                          const at::Tensor& real_labels = at::Tensor());

}  // namespace qimera::analysis
