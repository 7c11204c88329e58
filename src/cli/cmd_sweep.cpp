// qimera sweep: a grid of quantize runs (methods x settings x seeds) from a small JSON file, run as
// a resumable queue, ending with one table (Markdown, CSV, JSON). Thin: experiments/ does the work.
#include "commands.h"
#include "common.h"
#include "qimera/core/error.h"
#include "qimera/experiments/results_table.h"
#include "qimera/experiments/sweep_config.h"
#include "qimera/experiments/sweep_runner.h"

#include <fmt/format.h>

#include <filesystem>
#include <unistd.h>

namespace qimera::cli {
namespace {
namespace fs = std::filesystem;

struct SweepOptions {
  std::string config;
  int jobs = 1;
  int threads = 0;
  bool table_only = false;
  bool dry_run = false;
  std::vector<std::string> only;
  std::vector<std::string> only_settings;
  std::vector<uint64_t> only_seeds;
};

// This program, so that every run uses the same build as the sweep.
fs::path own_executable() {
  std::error_code ec;
  const auto self = fs::read_symlink("/proc/self/exe", ec);
  require(!ec, "cannot find this program's path (/proc/self/exe): {}", ec.message());
  return self;
}

void run(const SweepOptions& o) {
  auto config = experiments::read_sweep_config(o.config);
  if (!o.only.empty()) config = experiments::only_methods(config, o.only);
  if (!o.only_settings.empty()) config = experiments::only_settings(config, o.only_settings);
  if (!o.only_seeds.empty()) config = experiments::only_seeds(config, o.only_seeds);
  if (!o.table_only) {
    experiments::RunnerOptions runner;
    runner.executable = own_executable();
    runner.jobs = o.jobs;
    runner.threads_per_job = o.threads;
    runner.dry_run = o.dry_run;
    const auto report = experiments::run_sweep(
        config, runner, [](const std::string& line) { fmt::print("{}\n", line); std::fflush(stdout); });
    if (o.dry_run) return;
    if (!report.failures.empty()) {
      fmt::print(stderr, "{} run(s) failed:\n", report.failures.size());
      for (const auto& f : report.failures) fmt::print(stderr, "  {}\n", f);
    }
  }
  const auto table = experiments::collect_results(config);
  experiments::write_results(table, config.out);
  fmt::print("\n{}\ntable: {} (and table.csv, table.json)\n", table.markdown(),
             (config.out / "table.md").string());
  // Running the sweep must finish it; a table of folders as they are is an answer in itself.
  require(o.table_only || table.finished == table.planned,
          "{} of {} runs are not finished (see the logs in {})", table.planned - table.finished,
          table.planned, config.out.string());
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  static SweepOptions o;
  auto* cmd = app.add_subcommand(
      "sweep",
      "Run a grid of quantize runs (methods x settings x seeds) described by a JSON file, as a "
      "queue that survives interruption: run it again and finished runs are skipped, a half-done "
      "run resumes from its checkpoint. Ends with one table of final-epoch top-1 (mean +- sample "
      "std over seeds, every seed's value), best epoch (selected on the test set) and wall time, "
      "then which method wins per setting (each row's gap to the best mean, its Welch t, and "
      "whether the gap is larger than both seed spreads), written to OUT/table.md, table.csv and "
      "table.json.");
  cmd->footer(
      "Sweep file (JSON):\n"
      "  out       the sweep's folder; run folders are OUT/METHOD[-SETTING]-SEED, logs beside them\n"
      "  seeds     list of seeds, e.g. [1, 2, 3]\n"
      "  common    quantize flags every run gets, e.g. [\"--model\", \"m.json\", \"--test-data\", \"...\"]\n"
      "  settings  optional list of {\"name\", \"args\"}: flags shared by every method (e.g. bit widths)\n"
      "  methods   list of {\"name\", \"args\"}: each method's flags (--method, --preset, ...)\n"
      "  title     optional heading of the table\n"
      "The sweep sets --seed, --threads, --out and --resume itself. Example: sweeps/fmnist-4w4a.json");
  cmd->add_option("config", o.config, "Sweep file (JSON)")->required()->check(CLI::ExistingFile);
  cmd->add_option("--jobs,-j", o.jobs, "Runs at a time")->capture_default_str()->check(CLI::Range(1, 256));
  cmd->add_option("--threads", o.threads,
                  "CPU threads per run (0: the cores divided by --jobs, at least 1)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  cmd->add_flag("--table-only", o.table_only,
                "Run nothing: rebuild the table from the run folders that exist");
  cmd->add_flag("--dry-run", o.dry_run, "Print the commands of the runs still to do, run nothing");
  cmd->add_option("--only", o.only, "Only these methods of the file (names, comma-separated or repeated)")
      ->delimiter(',');
  cmd->add_option("--only-settings", o.only_settings,
                  "Only these settings of the file (names such as 4w4a, comma-separated or repeated)")
      ->delimiter(',');
  cmd->add_option("--only-seeds", o.only_seeds,
                  "Only these seeds of the file (comma-separated or repeated); the table then shows "
                  "only them")
      ->delimiter(',')
      ->check(seed_range());
  cmd->callback([] { run(o); });
}

}  // namespace qimera::cli
