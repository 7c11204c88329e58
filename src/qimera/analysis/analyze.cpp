#include "qimera/analysis/analyze.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/json_file.h"
#include "qimera/data/image_codec.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>

namespace qimera::analysis {
namespace fs = std::filesystem;

AnalyzeReport analyze_run(const fs::path& run_dir, const AnalyzeOptions& options, c10::Device device,
                          const at::Tensor& real_images, const at::Tensor& real_labels) {
  auto run = load_run_models(run_dir, options.model, device);
  AnalyzeReport report;
  report.out = options.out.empty() ? run_dir / "analysis" : options.out;
  const auto& out = report.out;
  fs::create_directories(out);

  spdlog::info("{}: sample grid", run_dir.string());
  write_file_atomically(out / "grid.png", data::encode_png(sample_grid(run, options.grid)));

  spdlog::info("{}: boundary metrics", run_dir.string());
  report.boundary = boundary_metrics(run, options.boundary);
  const auto boundary = boundary_json(report.boundary, options.boundary);
  write_json(out / "boundary.json", boundary);
  write_file_atomically(out / "boundary.md", boundary_markdown(report.boundary));

  spdlog::info("{}: feature PCA", run_dir.string());
  report.pca = feature_pca(run, real_images, real_labels, options.pca);
  write_file_atomically(out / "pca.csv", pca_csv(report.pca));
  if (options.plot) {
    plot_pca(report.pca, fmt::format("{}: teacher's penultimate features", run.method), out / "pca.png",
             out / "pca.svg");
  }
  report.summary = {{"run", run_dir.string()},
                    {"method", run.method},
                    {"generator", run.generator->options().to_json()},
                    {"grid", {{"file", "grid.png"},
                              {"per_row", options.grid.per_row},
                              {"class_rows", std::min(run.num_classes(), options.grid.max_classes)},
                              {"pair_rows", run.superposable() ? options.grid.pair_rows : 0}}},
                    {"boundary", boundary},
                    {"pca", {{"csv", "pca.csv"},
                             {"png", options.plot ? "pca.png" : ""},
                             {"explained", {report.pca.explained[0], report.pca.explained[1]}},
                             {"real_points", real_images.defined() ? std::min(real_images.size(0), options.pca.per_kind) : 0}}}};
  write_json(out / "analysis.json", report.summary);
  return report;
}

}  // namespace qimera::analysis
