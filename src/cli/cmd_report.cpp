// qimera report: one self-contained HTML page for one or several run folders. Thin: analysis/.
#include "commands.h"
#include "qimera/analysis/report.h"

#include <fmt/format.h>

#include <filesystem>

namespace qimera::cli {
namespace {

struct ReportOptions {
  std::vector<std::string> runs;
  std::string out;
};

void run_report(const ReportOptions& o) {
  const std::filesystem::path out = o.out.empty() ? std::filesystem::path(o.runs.front()) / "report.html" : std::filesystem::path(o.out);
  std::vector<std::filesystem::path> runs(o.runs.begin(), o.runs.end());
  analysis::write_report(runs, out);
  fmt::print("report: {} ({} run{}; opens without network)\n", out.string(), runs.size(),
             runs.size() == 1 ? "" : "s");
}

}  // namespace

void add_report_command(CLI::App& app) {
  static ReportOptions o;
  auto* cmd = app.add_subcommand(
      "report",
      "One self-contained HTML page (opens with no network) for one or several run folders: a "
      "comparison table (final epoch, best epoch labelled as selected on the test set, wall time) "
      "and test accuracy per epoch, then per run its command, result rows, losses per epoch, "
      "export size, all options and, after 'qimera analyze', the sample grid, the PCA plot and the "
      "boundary metrics");
  cmd->add_option("runs", o.runs, "Run folders")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--out", o.out, "The HTML file (default: FIRST_RUN/report.html)");
  cmd->callback([] { run_report(o); });
}

}  // namespace qimera::cli
