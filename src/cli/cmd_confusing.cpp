// qimera confusing-samples: the real images of the paper's Table 1 experiment (confusing and as
// many unconfusing ones), as --real-samples files for a data-free run. Thin: analysis/ does it.
#include "commands.h"
#include "common.h"
#include "qimera/analysis/confusing_samples.h"
#include "qimera/core/json_file.h"
#include "qimera/core/table.h"
#include "qimera/data/loader.h"
#include "qimera/deploy/model_card.h"

#include <fmt/format.h>

#include <numeric>

namespace qimera::cli {
namespace {
namespace fs = std::filesystem;

struct ConfusingOptions {
  CommonOptions common;
  std::string model, data, out = "runs/confusing";
  analysis::SelectionOptions selection;
};

void run_confusing(ConfusingOptions& o) {
  const auto device = apply_common_options(o.common);
  o.selection.seed = o.common.seed;
  const auto card = deploy::resolve_model(o.model);
  auto teacher = deploy::load_classifier(card, device, true, o.common.nonfinite());
  data::LoaderOptions loading;
  loading.batch_size = 500;
  loading.workers = o.common.workers;
  loading.device = device;
  data::BatchLoader loader(open_data(o.data, o.common), card.preprocess, loading);
  const auto s = analysis::select_confusing(*teacher, loader, o.selection);
  const auto summary = s.to_json(o.selection);
  Table table({"class", "confusing in the set", "taken", "unconfusing taken"});
  for (size_t c = 0; c < s.available.size(); ++c) {
    table.add_row({std::to_string(c), std::to_string(s.available[c]),
                   std::to_string(summary["confusing_taken_per_class"][c].get<int64_t>()),
                   std::to_string(summary["unconfusing_taken_per_class"][c].get<int64_t>())});
  }
  fmt::print("{} images scanned; highest softmax probability below {}: {} of them\n{}", s.scanned,
             o.selection.max_confidence,
             std::accumulate(s.available.begin(), s.available.end(), int64_t{0}), table.render());
  fmt::print("images whose highest probability is below each threshold: {}\n",
             summary["images_below_threshold"].dump());
  const fs::path out(o.out);
  fs::create_directories(out);
  write_json(out / "selection.json", summary);
  if (s.confusing_images.size(0) == 0) {
    fmt::print("no confusing images at this threshold: nothing to write but {} (raise "
               "--max-confidence)\n", (out / "selection.json").string());
    return;
  }
  analysis::write_real_samples(out / "confusing.safetensors", s.confusing_images, s.confusing_labels);
  analysis::write_real_samples(out / "unconfusing.safetensors", s.unconfusing_images, s.unconfusing_labels);
  fmt::print("written: {0}/confusing.safetensors, {0}/unconfusing.safetensors ({1} images each), "
             "{0}/selection.json\nuse: qimera quantize ... --real-samples {0}/confusing.safetensors\n",
             out.string(), s.confusing_images.size(0));
}

}  // namespace

void add_confusing_command(CLI::App& app) {
  static ConfusingOptions o;
  auto* cmd = app.add_subcommand(
      "confusing-samples",
      "Select the real images of the paper's Table 1: those whose highest softmax probability "
      "under the teacher is below --max-confidence (\"confusing\"), at most --per-class per class, "
      "and as many random unconfusing ones per class; writes them as --real-samples files "
      "(OUT/confusing.safetensors, OUT/unconfusing.safetensors) and the counts per class "
      "(OUT/selection.json)");
  add_common_options(*cmd, o.common);
  cmd->add_option("--model", o.model, "Teacher model card (.json)")->required();
  cmd->add_option("--data", o.data, "Real (training) images to select from, e.g. fashion-mnist:train")
      ->required();
  cmd->add_option("--max-confidence", o.selection.max_confidence,
                  "Confusing: the highest softmax probability is below this")
      ->capture_default_str()->check(CLI::Range(1e-6, 1.0));
  cmd->add_option("--per-class", o.selection.per_class, "At most this many confusing images per class")
      ->capture_default_str()->check(CLI::Range(1, 1000000));
  cmd->add_option("--out", o.out, "Output folder")->capture_default_str();
  cmd->callback([] { run_confusing(o); });
}

}  // namespace qimera::cli
