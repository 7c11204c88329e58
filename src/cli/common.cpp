#include "common.h"

#include "qimera/core/error.h"
#include "qimera/core/progress.h"
#include "qimera/core/runtime.h"
#include "qimera/data/dataset_spec.h"

#include <spdlog/spdlog.h>

#include <limits>

namespace qimera::cli {

namespace {
std::string g_command_line;
}

CLI::Validator seed_range() {
  return CLI::Range(uint64_t{0}, static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
}

void add_common_options(CLI::App& command, CommonOptions& o) {
  command.add_option("--device", o.device, "Where to run: auto (CUDA if available), cpu, cuda, cuda:N")
      ->capture_default_str();
  command.add_option("--threads", o.threads, "CPU threads for LibTorch (0: one per core)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  command.add_option("--seed", o.seed, "Random seed (runs with the same seed repeat exactly on CPU)")
      ->capture_default_str()
      ->check(seed_range());
  command.add_option("--data-root", o.data_root,
                     "Folder of the prepared data sets (default: $QIMERA_DATA_DIR, else "
                     "$XDG_CACHE_HOME/qimera, else ~/.cache/qimera)");
  command.add_option("--workers", o.workers, "Data-loading threads (0: load in the main thread)")
      ->capture_default_str()
      ->check(CLI::Range(0, 256));
  command.add_flag("--allow-nonfinite", o.allow_nonfinite,
                   "Load models whose weights or quantization parameters hold NaN or infinite "
                   "values (or inverted ranges) with a warning, instead of refusing them");
  command.add_flag("--quiet,-q", o.quiet, "No progress bars, warnings and errors only");
  command.add_flag("--verbose,-v", o.verbose, "Debug logging");
}

c10::Device apply_common_options(const CommonOptions& o) {
  spdlog::set_level(o.verbose ? spdlog::level::debug
                              : o.quiet ? spdlog::level::warn : spdlog::level::info);
  ProgressBar::set_enabled(!o.quiet);
  configure_threads(o.threads);
  seed_everything(o.seed);
  const auto device = resolve_device(o.device);
  spdlog::info("{}", describe_runtime(device));
  return device;
}

std::filesystem::path data_root(const CommonOptions& o) {
  return o.data_root.empty() ? data::default_data_root() : std::filesystem::path(o.data_root);
}

std::shared_ptr<const data::Dataset> open_data(const std::string& spec, const CommonOptions& o) {
  auto dataset = data::open_dataset(data::parse_dataset_spec(spec), data_root(o));
  spdlog::info("data: {}", dataset->description());
  return dataset;
}

std::string default_preprocess_for(const std::string& spec) {
  return data::default_preset_name(data::parse_dataset_spec(spec).kind);
}

void check_output_file(const std::string& path, const char* flag) {
  if (path.empty()) return;
  const std::filesystem::path p(path);
  require(p.has_filename() && !std::filesystem::is_directory(p),
          "{} {}: a folder; give the name of a file to write (e.g. {})", flag, path,
          (p / "results.json").string());
}

const std::string& command_line() { return g_command_line; }

void set_command_line(int argc, char** argv) {
  g_command_line.clear();
  for (int i = 0; i < argc; ++i) {
    if (i) g_command_line += ' ';
    g_command_line += i == 0 ? std::string("qimera") : std::string(argv[i]);
  }
}

}  // namespace qimera::cli
