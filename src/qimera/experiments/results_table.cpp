#include "qimera/experiments/results_table.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/json_file.h"
#include "qimera/experiments/run_outcome.h"
#include "qimera/methods/collapse_advice.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

namespace qimera::experiments {
namespace fs = std::filesystem;

Spread spread(const std::vector<double>& values) {
  Spread s;
  s.n = values.size();
  if (values.empty()) return s;
  const double mean = std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  s.mean = mean;
  if (values.size() < 2) return s;
  double squares = 0;
  for (const double v : values) squares += (v - mean) * (v - mean);
  s.std = std::sqrt(squares / (values.size() - 1));
  return s;
}

std::optional<double> welch_t(const Spread& a, const Spread& b) {
  if (!a.std || !b.std) return std::nullopt;
  const double se = std::sqrt(*a.std * *a.std / a.n + *b.std * *b.std / b.n);
  if (!(se > 0)) return std::nullopt;
  return (*a.mean - *b.mean) / se;
}

Spread ResultRow::final_spread() const {
  std::vector<double> values;
  for (const auto& [seed, v] : final_by_seed) values.push_back(v);
  return spread(values);
}

ResultsTable collect_results(const SweepConfig& config) {
  ResultsTable table;
  table.title = config.title;
  table.has_settings = !config.settings.empty();
  // Rows in the file's order: per setting, the naive starting point, then each method.
  std::map<std::pair<std::string, std::string>, size_t> index;  // (setting, method) -> row
  std::vector<std::string> setting_names;
  for (const auto& s : config.settings) setting_names.push_back(s.name);
  if (setting_names.empty()) setting_names.push_back("");
  std::vector<std::string> row_names{"naive"};
  for (const auto& m : config.methods) row_names.push_back(m.name);
  for (const auto& setting : setting_names) {
    for (const auto& method : row_names) {
      index[{setting, method}] = table.rows.size();
      ResultRow row;
      row.method = method;
      row.setting = setting;
      row.planned = config.seeds.size();
      table.rows.push_back(row);
    }
  }
  std::map<std::pair<std::string, uint64_t>, bool> naive_seen;  // (setting, seed)
  for (const auto& run : expand_sweep(config)) {
    ++table.planned;
    const auto outcome = read_run_outcome(run.dir);
    if (!outcome) continue;
    ++table.finished;
    if (!table.full_precision) table.full_precision = outcome->full_precision;
    auto& row = table.rows[index.at({run.setting, run.method})];
    if (outcome->final_top1) row.final_by_seed.emplace_back(run.seed, *outcome->final_top1);
    if (!outcome->collapses.empty()) row.collapsed_seeds.push_back(run.seed);
    if (outcome->best_top1) row.best.push_back(*outcome->best_top1);
    if (outcome->wall_seconds) {
      row.wall.push_back(*outcome->wall_seconds);
      row.wall_loop_only = row.wall_loop_only || outcome->wall_is_loop_only;
    }
    // The naive starting point depends on the seed and the setting, not on the method: count it
    // once per seed.
    if (outcome->naive && !naive_seen[{run.setting, run.seed}]) {
      naive_seen[{run.setting, run.seed}] = true;
      table.rows[index.at({run.setting, "naive"})].final_by_seed.emplace_back(run.seed, *outcome->naive);
    }
  }
  // A sweep whose methods never report a naive row (PTQ only) shows none.
  std::vector<ResultRow> kept;
  for (auto& row : table.rows) {
    if (row.method != "naive" || !row.final_by_seed.empty()) kept.push_back(std::move(row));
  }
  table.rows = std::move(kept);
  return table;
}

VersusBest ResultsTable::versus_best(size_t i) const {
  VersusBest v;
  const auto mine = rows.at(i).final_spread();
  if (!mine.mean) return v;
  std::optional<size_t> best;
  for (size_t j = 0; j < rows.size(); ++j) {
    if (rows[j].setting != rows[i].setting) continue;
    const auto m = rows[j].final_spread().mean;
    if (m && (!best || *m > *rows[*best].final_spread().mean)) best = j;
  }
  v.is_best = *best == i;
  const auto top = rows[*best].final_spread();
  v.gap = *mine.mean - *top.mean;
  if (v.is_best) return v;
  v.welch_t = welch_t(mine, top);
  // Without two seeds on both sides there is no spread to compare with.
  if (mine.std && top.std) v.beyond_spread = std::abs(*v.gap) > std::max(*mine.std, *top.std);
  return v;
}

namespace {

std::string number(const std::optional<double>& v, int digits = 2) {
  return v ? fmt::format("{:.{}f}", *v, digits) : std::string();
}

std::string mean_pm_std(const ResultRow& row) {
  const auto s = row.final_spread();
  if (!s.mean) return "not run";
  std::string text = number(s.mean);
  if (s.std) text += " +- " + number(s.std);
  if (s.n < row.planned) {
    text += fmt::format(" ({} of {} seeds)", s.n, row.planned);
  } else if (!s.std) {
    text += " (one seed)";
  }
  return text;
}

bool collapsed(const ResultRow& row, uint64_t seed) {
  return std::find(row.collapsed_seeds.begin(), row.collapsed_seeds.end(), seed) != row.collapsed_seeds.end();
}

// A run whose model fell to chance is marked where its value is shown: its number is a failure,
// not a method's spread.
std::string per_seed(const ResultRow& row, const char* separator, const char* collapse_mark = "") {
  std::vector<std::string> parts;
  for (const auto& [seed, v] : row.final_by_seed) {
    parts.push_back(fmt::format("{:.2f}{}", v, collapsed(row, seed) ? collapse_mark : ""));
  }
  return fmt::format("{}", fmt::join(parts, separator));
}

std::string seeds_list(const ResultRow& row) {
  std::vector<std::string> parts;
  for (const auto& [seed, v] : row.final_by_seed) parts.push_back(std::to_string(seed));
  return fmt::format("{}", fmt::join(parts, " "));
}

std::string label(const ResultRow& row) {
  return row.method == "naive" ? "naive (no training, noise ranges)" : row.method;
}

// JSON null for a value that is not there (one seed has no std, a row not run has no mean).
template <class T>
nlohmann::json nullable(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json();
}

std::string signed_number(const std::optional<double>& v) {
  return v ? fmt::format("{:+.2f}", *v) : std::string("-");
}

// Per setting, the rows from the best final mean down, each with its gap to the best and whether
// the seeds can tell them apart: the answer to "which method wins here, and by more than chance?".
std::string ranking_markdown(const ResultsTable& table) {
  std::vector<size_t> order;
  for (size_t i = 0; i < table.rows.size(); ++i) {
    if (table.rows[i].final_spread().mean) order.push_back(i);
  }
  if (order.size() < 2) return {};
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const auto& ra = table.rows[a];
    const auto& rb = table.rows[b];
    if (ra.setting != rb.setting) return a < b;  // settings keep the file's order
    return *ra.final_spread().mean > *rb.final_spread().mean;
  });
  const std::string setting_head = table.has_settings ? "setting | " : "";
  std::string md = fmt::format(
      "\nWhich method wins: final-epoch means from the best down; the gap to the best in points, "
      "its Welch t, and whether the gap is larger than both rows' seed spread (std). With three "
      "seeds a gap inside the spread, or |t| under about 3 (Student's 5% two-sided point is 2.78 at "
      "4 degrees of freedom), is not established.\n\n"
      "| {}method | top-1 % final epoch | gap to the best | Welch t | gap larger than both spreads |\n"
      "{}\n",
      setting_head, table.has_settings ? "|---|---|---|---|---|---|" : "|---|---|---|---|---|");
  for (const size_t i : order) {
    const auto& row = table.rows[i];
    const auto v = table.versus_best(i);
    md += fmt::format("| {}{} | {} | {} | {} | {} |\n", table.has_settings ? row.setting + " | " : "",
                      label(row), mean_pm_std(row), v.is_best ? "best" : signed_number(v.gap),
                      v.welch_t ? fmt::format("{:.1f}", *v.welch_t) : "-",
                      v.beyond_spread ? (*v.beyond_spread ? "yes" : "no") : "-");
  }
  return md;
}

}  // namespace

std::string ResultsTable::markdown() const {
  std::string md = fmt::format("## {}\n\n", title);
  if (full_precision) md += fmt::format("Full precision: {:.2f} % top-1.\n\n", *full_precision);
  const std::string setting_head = has_settings ? "setting | " : "";
  md += fmt::format(
      "| {}method | top-1 % final epoch, mean +- std | per seed | best epoch, mean (selected on "
      "the test set) | wall s per run |\n",
      setting_head);
  md += has_settings ? "|---|---|---|---|---|---|\n" : "|---|---|---|---|---|\n";
  bool loop_only = false, any_collapse = false;
  for (const auto& row : rows) {
    const auto wall = spread(row.wall).mean;
    loop_only = loop_only || (wall && row.wall_loop_only);
    any_collapse = any_collapse || !row.collapsed_seeds.empty();
    md += fmt::format("| {}{} | {} | {} | {} | {}{} |\n",
                      has_settings ? row.setting + " | " : "", label(row), mean_pm_std(row),
                      per_seed(row, ", ", " (collapsed)"), row.best.empty() ? "-" : number(spread(row.best).mean),
                      wall ? number(wall, 0) : "-", wall && row.wall_loop_only ? "*" : "");
  }
  md += fmt::format("\n{} of {} runs finished; std is the sample standard deviation over seeds.\n",
                    finished, planned);
  if (loop_only) {
    md += "* the training loop's time only: these runs come from a qimera that did not yet record "
          "the whole command's time.\n";
  }
  if (any_collapse) {
    md += fmt::format(
        "(collapsed): in that run the model fell to chance during training and the run went on "
        "(its summary.json lists the epochs); its value is counted in the mean. What to try: {}.\n",
        methods::kCollapseAdvice);
  }
  return md + ranking_markdown(*this);
}

std::string ResultsTable::csv() const {
  std::string out =
      "setting,method,seeds_finished,seeds_planned,final_mean,final_std,final_per_seed,seeds,"
      "best_mean_selected_on_test,wall_seconds_mean,gap_to_best,welch_t_vs_best,collapsed_seeds\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    const auto s = row.final_spread();
    const auto v = versus_best(i);
    out += fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{}\n", row.setting, row.method, s.n,
                       row.planned, number(s.mean, 4), number(s.std, 4), per_seed(row, ";"),
                       seeds_list(row), number(spread(row.best).mean, 4),
                       number(spread(row.wall).mean, 1), number(v.gap, 4), number(v.welch_t, 3),
                       fmt::join(row.collapsed_seeds, " "));
  }
  return out;
}

nlohmann::json ResultsTable::json() const {
  auto to_json = [](const Spread& s) {
    return nlohmann::json{{"n", s.n}, {"mean", nullable(s.mean)}, {"std", nullable(s.std)}};
  };
  auto list = nlohmann::json::array();
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& row = rows[i];
    const auto versus = versus_best(i);
    auto final = to_json(row.final_spread());
    final["per_seed"] = nlohmann::json::object();
    for (const auto& [seed, v] : row.final_by_seed) final["per_seed"][std::to_string(seed)] = v;
    final["collapsed_seeds"] = row.collapsed_seeds;
    auto wall = to_json(spread(row.wall));
    wall["loop_only"] = row.wall_loop_only;
    list.push_back({{"method", row.method},
                    {"setting", row.setting},
                    {"seeds_planned", row.planned},
                    {"final_epoch_top1", final},
                    {"best_epoch_top1_selected_on_test_set", to_json(spread(row.best))},
                    {"wall_seconds", wall},
                    {"versus_best",
                     {{"is_best", versus.is_best},
                      {"gap", nullable(versus.gap)},
                      {"welch_t", nullable(versus.welch_t)},
                      {"gap_larger_than_both_spreads", nullable(versus.beyond_spread)}}}});
  }
  return {{"title", title},
          {"full_precision_top1", nullable(full_precision)},
          {"runs_finished", finished},
          {"runs_planned", planned},
          {"rows", list}};
}

void write_results(const ResultsTable& table, const fs::path& dir) {
  write_file_atomically(dir / "table.md", table.markdown());
  write_file_atomically(dir / "table.csv", table.csv());
  write_json(dir / "table.json", table.json());
}

}  // namespace qimera::experiments
