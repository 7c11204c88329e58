// The table a sweep ends with: per method (and setting), the final epoch's top-1 as mean +- sample
// std over seeds with every seed's value, the best epoch's mean (labelled as selected on the test
// set), and wall time; as Markdown, CSV and JSON. Built from the run folders alone.
#pragma once

#include "qimera/experiments/sweep_config.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qimera::experiments {

/// Mean and sample standard deviation (n - 1); std is empty below two values, mean below one.
struct Spread {
  size_t n = 0;
  std::optional<double> mean, std;
};
Spread spread(const std::vector<double>& values);

/// Welch's t of a's mean minus b's: the gap over its standard error, sqrt(sa^2/na + sb^2/nb).
/// Empty unless both have two or more values and the standard error is above zero.
std::optional<double> welch_t(const Spread& a, const Spread& b);

/// A row against the best final-epoch mean of its setting: what a user reads to see which method
/// wins and whether three seeds can tell.
struct VersusBest {
  bool is_best = false;
  std::optional<double> gap;       // this row's mean minus the best's (<= 0); empty if not run
  std::optional<double> welch_t;   // of that gap
  std::optional<bool> beyond_spread;  // |gap| larger than both rows' sample std; empty without them
};

struct ResultRow {
  std::string method;   // a method's name, or "naive" (the runs' shared untrained starting point)
  std::string setting;  // empty when the sweep has no settings
  size_t planned = 0;   // seeds in the grid
  std::vector<std::pair<uint64_t, double>> final_by_seed;
  std::vector<uint64_t> collapsed_seeds;  // runs whose model fell to chance and went on
  std::vector<double> best;  // best epoch top-1 per finished seed (methods that train)
  std::vector<double> wall;  // seconds per finished run
  bool wall_loop_only = false;

  Spread final_spread() const;
};

struct ResultsTable {
  std::string title;
  std::optional<double> full_precision;
  bool has_settings = false;
  std::vector<ResultRow> rows;
  size_t finished = 0, planned = 0;  // runs

  /// Row `i` against the row with the best final mean in its setting.
  VersusBest versus_best(size_t i) const;

  std::string markdown() const;
  std::string csv() const;
  nlohmann::json json() const;
};

/// Reads every run folder of the grid; runs without a summary.json count as not finished.
ResultsTable collect_results(const SweepConfig& config);

/// Writes table.md, table.csv and table.json into `dir`, each atomically.
void write_results(const ResultsTable& table, const std::filesystem::path& dir);

}  // namespace qimera::experiments
