// qimera analyze: the paper's views of a data-free run (sample grid, feature PCA, boundary
// metrics), written into the run folder. Thin: analysis/ does the work.
#include "commands.h"
#include "common.h"
#include "qimera/analysis/analyze.h"
#include "qimera/data/loader.h"
#include "qimera/data/spread_subset.h"
#include "qimera/deploy/model_card.h"

#include <fmt/format.h>

namespace qimera::cli {
namespace {

struct AnalyzeCliOptions {
  CommonOptions common;
  std::string run;
  std::string data;
  analysis::AnalyzeOptions analysis;
  std::string out;
  bool no_plot = false;
};

void run_analyze(AnalyzeCliOptions& o) {
  const auto device = apply_common_options(o.common);
  o.analysis.out = o.out;
  o.analysis.plot = !o.no_plot;
  o.analysis.grid.seed = o.analysis.boundary.seed = o.analysis.pca.seed = o.common.seed;
  at::Tensor images, labels;
  if (!o.data.empty()) {
    // The teacher's preprocessing, from the card the run recorded (or --model).
    const auto card = analysis::run_teacher_card(o.run, o.analysis.model);
    data::LoaderOptions loading;
    loading.batch_size = o.analysis.pca.per_kind;
    loading.workers = 0;
    loading.device = device;
    data::BatchLoader loader(data::spread_subset(open_data(o.data, o.common), o.analysis.pca.per_kind),
                             card.preprocess, loading);
    loader.start_epoch(0);
    const auto batch = loader.next();
    images = batch->images;
    labels = batch->labels;
  }
  const auto report = analysis::analyze_run(o.run, o.analysis, device, images, labels);
  fmt::print("boundary metrics (the paper's Table 5; K = 2):\n{}\n", analysis::boundary_markdown(report.boundary));
  fmt::print("PCA: PC1 {:.1f}%, PC2 {:.1f}% of the variance\n", 100 * report.pca.explained[0],
             100 * report.pca.explained[1]);
  fmt::print("written to {}: grid.png, boundary.json, boundary.md, pca.csv{}, analysis.json\n",
             report.out.string(), o.no_plot ? "" : ", pca.png, pca.svg");
}

}  // namespace

void add_analyze_command(CLI::App& app) {
  static AnalyzeCliOptions o;
  auto* cmd = app.add_subcommand(
      "analyze",
      "The paper's views of a data-free run, from its folder's checkpoint: a grid of generated "
      "images per class (Figure 4; plus rows sweeping the superposition between two classes for "
      "Qimera's generator), a PCA of the teacher's penultimate features of real, generated and "
      "superposed samples (Figure 3; PNG and SVG by gnuplot, CSV), and the boundary metrics of "
      "Table 5 (distance ratio and intrusion score of superposed-embedding and pixel-Mixup paths "
      "between every pair of classes, at z = 0 and over noise draws). Written to RUN_DIR/analysis.");
  add_common_options(*cmd, o.common);
  cmd->add_option("run", o.run, "Run folder of a generator-based method (gdfq, gdfq-mixup, "
                                "gdfq-cutmix, qimera, zaq, qimera-zaq)")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--model", o.analysis.model,
                  "Teacher model card (default: the one the run recorded)");
  cmd->add_option("--data", o.data,
                  "Real images for the PCA, --pca-points of them spread evenly over the set (e.g. fashion-mnist:test; default: none, synthetic only)");
  cmd->add_option("--out", o.out, "Output folder (default: RUN_DIR/analysis)");
  cmd->add_option("--grid-per-row", o.analysis.grid.per_row, "Images per grid row")
      ->capture_default_str()->check(CLI::Range(2, 64));
  cmd->add_option("--grid-classes", o.analysis.grid.max_classes, "Class rows (the first N classes)")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--grid-pairs", o.analysis.grid.pair_rows,
                  "Rows sweeping lambda between classes (0,1), (1,2), ... (Qimera's generator)")
      ->capture_default_str()->check(CLI::Range(0, 100));
  cmd->add_option("--path-steps", o.analysis.boundary.steps,
                  "Steps of each boundary path (the paper: 100, lambda in 0.01 steps)")
      ->capture_default_str()->check(CLI::Range(2, 1000));
  cmd->add_option("--noise-draws", o.analysis.boundary.noise_draws,
                  "Fixed noise draws the boundary metrics are averaged over, besides z = 0")
      ->capture_default_str()->check(CLI::Range(0, 1000));
  cmd->add_option("--max-pairs", o.analysis.boundary.max_pairs,
                  "Class pairs: all when there are at most this many, else a fixed random sample")
      ->capture_default_str()->check(CLI::Range(1, 100000));
  cmd->add_option("--pca-points", o.analysis.pca.per_kind,
                  "Points per kind (real, generated, superposed) in the PCA")
      ->capture_default_str()->check(CLI::Range(2, 100000));
  cmd->add_flag("--no-plot", o.no_plot, "Skip the gnuplot PCA plot (pca.csv is still written)");
  cmd->callback([] { run_analyze(o); });
}

}  // namespace qimera::cli
