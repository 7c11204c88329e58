#include "qimera/experiments/run_outcome.h"

#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/core/json_value.h"

namespace qimera::experiments {
namespace fs = std::filesystem;

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

std::optional<RunOutcome> read_run_outcome(const fs::path& dir) {
  const auto path = dir / "summary.json";
  if (!fs::exists(path)) return std::nullopt;
  return run_outcome_of(read_json(path), path.string());
}

RunOutcome run_outcome_of(const nlohmann::json& j, const std::string& name) {
  require(j.is_object() && j.contains("rows") && j.at("rows").is_array(),
          "{} has no result rows: it was written by a qimera from before the methods split (or is "
          "not a run summary); rerun that run",
          name);
  RunOutcome o;
  if (j.contains("seed")) o.seed = static_cast<uint64_t>(json_integer(j.at("seed"), name + ": seed", 0, INT64_MAX));
  // Rows are the printed result table: "full precision", "naive 4w4a", then the method's rows, whose
  // notes say "final epoch (N)" and "best epoch (N), selected on the test set" when it trains.
  std::optional<double> first_result;
  for (const auto& row : j.at("rows")) {
    require(row.is_object() && row.contains("label") && row.at("label").is_string(),
            "{}: a row without a label", name);
    if (!row.contains("top1")) continue;  // no test set
    const auto label = row.at("label").get<std::string>();
    const auto note = row.value("note", std::string());
    const double top1 = json_number(row.at("top1"), name + ": " + label);
    if (label == "full precision") {
      o.full_precision = top1;
    } else if (starts_with(label, "naive ")) {
      o.naive = top1;
    } else if (starts_with(note, "final epoch")) {
      o.final_top1 = top1;
    } else if (note.find("selected on the test set") != std::string::npos) {
      o.best_top1 = top1;
    } else if (!first_result) {
      first_result = top1;
    }
  }
  if (!o.final_top1) o.final_top1 = first_result;
  if (j.contains("result") && j.at("result").is_object()) {
    const auto& result = j.at("result");
    if (result.contains("best_epoch_selected_on_test_set")) {
      const auto& best = result.at("best_epoch_selected_on_test_set");
      if (best.contains("epoch")) o.best_epoch = json_integer(best.at("epoch"), name + ": best epoch", 0, INT64_MAX);
    }
    if (result.contains("collapses")) {
      const auto& list = result.at("collapses");
      require(list.is_array(), "{}: result.collapses is not a list", name);
      for (const auto& c : list) {
        require(c.is_string(), "{}: result.collapses holds a non-text entry", name);
        o.collapses.push_back(c.get<std::string>());
      }
    }
    if (result.contains("seconds_this_session")) {
      o.wall_seconds = json_number(result.at("seconds_this_session"), name + ": seconds_this_session");
      o.wall_is_loop_only = true;
    }
  }
  if (j.contains("wall_seconds")) {
    o.wall_seconds = json_number(j.at("wall_seconds"), name + ": wall_seconds");
    o.wall_is_loop_only = false;
  }
  return o;
}

}  // namespace qimera::experiments
