#include "qimera/analysis/boundary_metrics.h"

#include "qimera/core/error.h"
#include "qimera/experiments/results_table.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/GradMode.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>

namespace qimera::analysis {

PathMetrics path_metrics(const at::Tensor& features, const at::Tensor& probabilities, int64_t a,
                         int64_t b) {
  require(features.dim() == 2 && features.size(0) >= 2 && probabilities.dim() == 2 &&
              probabilities.size(0) == features.size(0),
          "a path needs at least two points with features and probabilities");
  const auto f = features.to(at::kDouble);
  const double along = (f.slice(0, 1) - f.slice(0, 0, -1)).norm(2, {1}).sum().item<double>();
  const double straight = (f[-1] - f[0]).norm().item<double>();
  PathMetrics m;
  m.distance_ratio = straight > 0 ? along / straight : std::nan("");
  const auto p = probabilities.to(at::kDouble);
  m.intrusion = (1.0 - p.select(1, a) - p.select(1, b)).clamp_min(0).mean().item<double>();
  return m;
}

std::vector<std::pair<int64_t, int64_t>> class_pairs(int64_t classes, int64_t max_pairs,
                                                     uint64_t seed) {
  require(classes >= 2, "boundary metrics need at least two classes, got {}", classes);
  require(max_pairs >= 1, "the number of class pairs must be positive, got {}", max_pairs);
  std::vector<std::pair<int64_t, int64_t>> all;
  const int64_t total = classes * (classes - 1) / 2;
  if (total <= max_pairs) {
    for (int64_t a = 0; a < classes; ++a) {
      for (int64_t b = a + 1; b < classes; ++b) all.emplace_back(a, b);
    }
    return all;
  }
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> pick(0, classes - 1);
  std::set<std::pair<int64_t, int64_t>> chosen;
  while (static_cast<int64_t>(chosen.size()) < max_pairs) {
    int64_t a = pick(rng), b = pick(rng);
    if (a == b) continue;
    chosen.emplace(std::min(a, b), std::max(a, b));
  }
  return {chosen.begin(), chosen.end()};
}

generator::LatentBatch superposed_path(int64_t a, int64_t b, const at::Tensor& z, int64_t steps,
                                       int64_t num_classes) {
  const int64_t n = steps + 1;
  const auto device = z.device();
  generator::LatentBatch batch;
  batch.labels = at::tensor({a, b}, at::TensorOptions(at::kLong).device(device)).repeat({n, 1});
  batch.noise = z.reshape({1, 1, -1}).expand({n, 2, z.size(0)}).contiguous();
  const auto lambda = at::linspace(0, 1, n, at::TensorOptions(at::kFloat).device(device));
  batch.mix = at::stack({1 - lambda, lambda}, 1);
  batch.targets = generator::soft_targets(batch.labels, batch.mix, num_classes);
  return batch;
}

generator::LatentBatch ordinary_batch(const at::Tensor& labels, const at::Tensor& noise,
                                      int64_t num_classes) {
  generator::LatentBatch batch;
  batch.labels = labels;
  batch.noise = noise;
  if (labels.defined()) batch.targets = generator::soft_targets(labels, at::Tensor(), num_classes);
  return batch;
}

namespace {

// One image per class, all with noise z, in one batch (class c at row c).
generator::LatentBatch one_per_class(const at::Tensor& z, int64_t num_classes) {
  return ordinary_batch(at::arange(num_classes, at::TensorOptions(at::kLong).device(z.device())),
                        z.reshape({1, -1}).expand({num_classes, z.size(0)}).contiguous(), num_classes);
}

struct Accumulator {
  std::vector<double> ratios, intrusions;
  void add(const PathMetrics& m) {
    if (std::isfinite(m.distance_ratio)) ratios.push_back(m.distance_ratio);
    intrusions.push_back(m.intrusion);
  }
};

// Mean and sample std (0 for a single path; NaN for none), as the sweep's tables compute them.
std::pair<double, double> mean_std(const std::vector<double>& v) {
  const auto s = experiments::spread(v);
  return {s.mean.value_or(std::nan("")), s.mean ? s.std.value_or(0.0) : std::nan("")};
}

BoundaryRow finish(const std::string& path, const std::string& noise, const Accumulator& acc) {
  BoundaryRow row;
  row.path = path;
  row.noise = noise;
  row.paths = static_cast<int64_t>(acc.intrusions.size());
  std::tie(row.ratio_mean, row.ratio_std) = mean_std(acc.ratios);
  std::tie(row.intrusion_mean, row.intrusion_std) = mean_std(acc.intrusions);
  return row;
}

}  // namespace

std::vector<BoundaryRow> boundary_metrics(RunModels& run, const BoundaryOptions& options) {
  require(options.steps >= 2, "a path needs at least 2 steps, got {}", options.steps);
  require(options.noise_draws >= 0, "noise draws must not be negative, got {}", options.noise_draws);
  std::vector<BoundaryRow> rows;
  if (!run.labelled()) {
    BoundaryRow row;
    row.path = "superposed embedding / pixel mixup";
    row.note = "not defined: this generator has no classes (ZAQ's)";
    return {row};
  }
  const c10::NoGradGuard no_grad;
  const int64_t classes = run.num_classes();
  const int64_t dim = run.generator->options().latent_dim;
  const auto pairs = class_pairs(classes, options.max_pairs, options.seed);
  auto cpu = at::detail::createCPUGenerator(options.seed);
  std::vector<std::pair<std::string, at::Tensor>> noises{
      {"z = 0", at::zeros({1, dim})},
      {fmt::format("{} noise draws", options.noise_draws),
       at::randn({options.noise_draws, dim}, cpu)}};
  const auto lambda = at::linspace(0, 1, options.steps + 1).to(run.device).reshape({-1, 1, 1, 1});
  auto measure = [&](const at::Tensor& images, int64_t a, int64_t b) {
    const auto features = run.teacher->features(images);
    return path_metrics(features, at::softmax(run.teacher->classify(features), 1), a, b);
  };
  // GDFQ's published input is noise x embedding: at z = 0 every class gives the same image.
  const bool zero_noise_defined = run.generator->options().input != generator::LatentInput::Product;
  for (const auto& [noise_name, zs] : noises) {
    if (zs.size(0) == 0) continue;
    const bool defined = noise_name != "z = 0" || zero_noise_defined;
    if (run.superposable()) {
      Accumulator acc;
      for (int64_t draw = 0; draw < zs.size(0); ++draw) {
        const auto z = zs[draw].to(run.device);
        for (const auto& [a, b] : pairs) {
          acc.add(measure(run.generator->forward(superposed_path(a, b, z, options.steps, classes)), a, b));
        }
      }
      rows.push_back(finish("superposed embedding", noise_name, acc));
    }
    if (!defined) {
      BoundaryRow row;
      row.path = "pixel mixup";
      row.noise = noise_name;
      row.note = "not defined: at z = 0 this generator's input (noise x embedding) is zero for every class";
      rows.push_back(row);
      continue;
    }
    Accumulator acc;
    for (int64_t draw = 0; draw < zs.size(0); ++draw) {
      const auto ends = run.generator->forward(one_per_class(zs[draw].to(run.device), classes));
      for (const auto& [a, b] : pairs) {
        acc.add(measure((1 - lambda) * ends[a].unsqueeze(0) + lambda * ends[b].unsqueeze(0), a, b));
      }
    }
    rows.push_back(finish("pixel mixup", noise_name, acc));
  }
  return rows;
}

nlohmann::json boundary_json(const std::vector<BoundaryRow>& rows, const BoundaryOptions& options) {
  auto list = nlohmann::json::array();
  auto number = [](double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(); };
  for (const auto& r : rows) {
    list.push_back({{"path", r.path},
                    {"noise", r.noise},
                    {"paths", r.paths},
                    {"distance_ratio", {{"mean", number(r.ratio_mean)}, {"std", number(r.ratio_std)}}},
                    {"intrusion", {{"mean", number(r.intrusion_mean)}, {"std", number(r.intrusion_std)}}},
                    {"note", r.note}});
  }
  return {{"rows", list},
          {"steps", options.steps},
          {"noise_draws", options.noise_draws},
          {"max_pairs", options.max_pairs},
          {"seed", options.seed},
          {"choices",
           "intrusion = mean over the path of P's softmax mass on classes other than the two; both "
           "classes get the same noise; G uses batch statistics as in training, one path per batch "
           "(Mixup: the end images come from one batch of one image per class); std over pairs and "
           "draws"}};
}

std::string boundary_markdown(const std::vector<BoundaryRow>& rows) {
  std::string md =
      "| path | noise | paths | distance ratio (ideal 1) | intrusion (softmax mass elsewhere) |\n"
      "|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    if (!r.note.empty()) {
      md += fmt::format("| {} | {} | - | {} | |\n", r.path, r.noise, r.note);
      continue;
    }
    md += fmt::format("| {} | {} | {} | {:.3f} +- {:.3f} | {:.5f} +- {:.5f} |\n", r.path, r.noise,
                      r.paths, r.ratio_mean, r.ratio_std, r.intrusion_mean, r.intrusion_std);
  }
  return md;
}

}  // namespace qimera::analysis
