// What one finished run folder reports: read back from the summary.json that `qimera quantize`
// writes, so tables can be rebuilt from run folders alone.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace qimera::experiments {

struct RunOutcome {
  std::optional<uint64_t> seed;
  std::optional<double> full_precision;  // top-1 %, when the run had a test set
  std::optional<double> naive;           // the same quantization, noise ranges, no training
  std::optional<double> final_top1;      // the final epoch, or the method's result when it does not train
  std::optional<double> best_top1;       // best epoch, selected on the test set
  std::optional<int64_t> best_epoch;
  /// The whole command's wall time (summary.json "wall_seconds"; a resumed run's includes its
  /// earlier sessions up to the checkpoint it resumed from, but summaries written before that rule
  /// hold the last session only). Older runs only recorded their training loop
  /// ("seconds_this_session"), marked by wall_is_loop_only.
  std::optional<double> wall_seconds;
  bool wall_is_loop_only = false;
  /// Epochs where the model fell to chance and the run went on ("result"."collapses"; empty for
  /// runs from before that check).
  std::vector<std::string> collapses;
};

/// The outcome recorded in a parsed summary.json; `name` (the file) is named in errors.
RunOutcome run_outcome_of(const nlohmann::json& summary, const std::string& name);

/// nullopt when `dir` holds no summary.json (a run not finished); a malformed summary is an error
/// that names the file.
std::optional<RunOutcome> read_run_outcome(const std::filesystem::path& dir);

}  // namespace qimera::experiments
