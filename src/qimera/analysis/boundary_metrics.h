// The paper's Table 5: how a path between two classes crosses the teacher's feature space. Along a
// path of images x(lambda), lambda = 0, 1/S, ..., 1 (S steps):
//   distance ratio = sum_i |f(x_{i+1}) - f(x_i)| / |f(x_S) - f(x_0)|  (P's penultimate features;
//                    1.0 for a straight path)
//   intrusion      = mean_i (1 - p_a(x_i) - p_b(x_i))  (P's softmax mass on the other classes; the
//                    paper says "outputs", softmax keeps the score bounded: our choice)
// Paths: Qimera's superposed embedding (1 - lambda) e_a + lambda e_b through G, or Mixup's pixel
// blend (1 - lambda) G(a) + lambda G(b). Unpublished choices, ours: both classes get the same noise;
// G runs with batch statistics as in training, one path per batch; pairs are all class pairs up to
// `max_pairs`, else a fixed random sample.
#pragma once

#include "qimera/analysis/run_models.h"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace qimera::analysis {

struct PathMetrics {
  double distance_ratio = 0;
  double intrusion = 0;
};

/// From features [S + 1, d] and softmax probabilities [S + 1, C] along a path from class a to b.
PathMetrics path_metrics(const at::Tensor& features, const at::Tensor& probabilities, int64_t a,
                         int64_t b);

/// All pairs (a < b) when there are at most `max_pairs`, else `max_pairs` distinct pairs drawn
/// with `seed`, sorted.
std::vector<std::pair<int64_t, int64_t>> class_pairs(int64_t classes, int64_t max_pairs,
                                                     uint64_t seed);

struct BoundaryOptions {
  int64_t steps = 100;       // the paper's 0.01 steps
  int64_t noise_draws = 8;   // besides z = 0
  int64_t max_pairs = 45;    // all pairs of 10 classes
  uint64_t seed = 0;
};

/// One row of the table: a kind of path at one noise setting, over pairs (and draws).
struct BoundaryRow {
  std::string path;   // "superposed embedding" or "pixel mixup"
  std::string noise;  // "z = 0" or "N noise draws"
  int64_t paths = 0;
  double ratio_mean = 0, ratio_std = 0, intrusion_mean = 0, intrusion_std = 0;
  std::string note;   // why a row is empty
};

/// The rows G allows: superposed-embedding paths for Qimera's generator, pixel-Mixup paths for any
/// generator with labels (at z = 0 only where z = 0 still tells classes apart).
std::vector<BoundaryRow> boundary_metrics(RunModels& run, const BoundaryOptions& options);

nlohmann::json boundary_json(const std::vector<BoundaryRow>& rows, const BoundaryOptions& options);
std::string boundary_markdown(const std::vector<BoundaryRow>& rows);

/// G's ordinary input: `labels` [B] (undefined for a label-free generator) with `noise` [B, D] and
/// their one-hot targets.
generator::LatentBatch ordinary_batch(const at::Tensor& labels, const at::Tensor& noise,
                                      int64_t num_classes);

/// G's input for a superposed path from class a to b: lambda = i / steps, noise `z` [D] for both.
generator::LatentBatch superposed_path(int64_t a, int64_t b, const at::Tensor& z, int64_t steps,
                                       int64_t num_classes);

}  // namespace qimera::analysis
