// The one epoch loop every training method runs: teacher training and every data-free method. It owns
// the run folder's life: a checkpoint after every epoch (written atomically), metrics.jsonl kept
// equal to the checkpoint's history (one line per finished epoch, whatever the kill point), resuming,
// stopping or rolling back on a non-finite loss or a collapse to chance, evaluation, and the final and best epochs.
// What happens inside an epoch is the Trainable's business.
#pragma once

#include "qimera/core/options.h"
#include "qimera/eval/evaluate.h"
#include "qimera/methods/checkpoint.h"
#include "qimera/methods/metrics.h"
#include "qimera/models/classifier.h"

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace qimera::data {
class BatchLoader;
}
namespace qimera::eval {
struct ProbeSet;
}

namespace qimera::methods {

enum class NanPolicy { Stop, Rollback };
/// What to do when an epoch brings the model to chance (see collapse.h).
enum class CollapsePolicy { Warn, Stop, Rollback };

struct LoopOptions {
  int64_t epochs = 400;
  int64_t eval_every = 1;  // epochs between test evaluations (the last epoch is always evaluated)
  int64_t log_every = 50;  // iterations between metric reads (each one waits for the device)
  NanPolicy on_nan = NanPolicy::Stop;
  CollapsePolicy on_collapse = CollapsePolicy::Warn;
  double rollback_lr_factor = 0.5;
  int max_rollbacks = 3;  // shared by NaN and collapse rollbacks

  /// Without `with_epochs`, the method sets `epochs` through an option of its own.
  void describe(OptionVisitor& v, bool with_epochs = true);
  void validate() const;
};

/// One finished epoch: learning rates and metric means by name, in order, and the test accuracy.
struct EpochRecord {
  int64_t epoch = 0;  // 1-based
  std::vector<std::pair<std::string, double>> values;
  std::optional<eval::Accuracy> test;
  double seconds = 0;

  /// The value called `name`; an Error names the known ones when it is missing.
  double value(const std::string& name) const;
  bool has(const std::string& name) const;
  nlohmann::json to_json() const;
  /// The same, keys in order: epoch, the values as reported, test accuracy, seconds.
  nlohmann::ordered_json to_ordered_json() const;
  static EpochRecord from_json(const nlohmann::ordered_json& j);
};

struct RunResult {
  std::vector<EpochRecord> history;  // every epoch of the run, including resumed ones
  std::optional<EpochRecord> final_epoch, best_epoch;  // best: selected on the test set
  double seconds = 0;                // this session's
  /// This session's plus the time earlier sessions had spent up to the checkpoint this one resumed
  /// from (their epochs' training and evaluation; not their start-up, nor work after that checkpoint).
  double seconds_all_sessions = 0;
  /// Epochs where the model fell to chance and was kept (--on-collapse warn); result.json lists them.
  std::vector<std::string> collapses;
};

/// What a training method does inside the loop.
class Trainable {
 public:
  virtual ~Trainable() = default;
  /// Iterations of `epoch` (fixed for data-free methods, the batches of a pass over a data set).
  virtual int64_t iterations(int64_t epoch) = 0;
  /// Prepares `epoch`: learning rates times `lr_scale` (lowered by rollbacks), range observing,
  /// data order. Returns the learning rates in effect, by name, for the record.
  virtual std::vector<std::pair<std::string, double>> begin_epoch(int64_t epoch, double lr_scale) = 0;
  /// One iteration; losses and other metrics go to `metrics`.
  virtual void iteration(int64_t epoch, MetricSums& metrics) = 0;
  /// After the epoch's iterations, before evaluation and the checkpoint.
  virtual void end_epoch(int64_t epoch) {}
  /// Everything a checkpoint must hold to continue bit-identically.
  virtual TrainingState state() = 0;
  /// The model evaluated on the test data.
  virtual models::ClassifierImpl& evaluated() = 0;
};

/// Files of a run folder.
struct RunFolder {
  std::filesystem::path dir;
  std::filesystem::path config() const { return dir / "config.json"; }
  std::filesystem::path checkpoint() const { return dir / "checkpoint.pt"; }
  std::filesystem::path metrics() const { return dir / "metrics.jsonl"; }
  std::filesystem::path result() const { return dir / "result.json"; }
  /// Whether a run was started here (a checkpoint or a configuration exists).
  bool holds_run() const;
};

/// Starts a new run in `folder` (refusing one that already holds a run: pass resume) and writes
/// its config.json. With `resume`, requires a checkpoint (an Error says there is nothing to resume)
/// and rewrites config.json with `config` (the caller has compared it with the saved one).
void open_run(const RunFolder& folder, const nlohmann::json& config, bool resume);

/// Runs the remaining epochs of `trainable` in `folder` (opened with open_run). With `test`,
/// evaluates every eval_every epochs and after the last. With `probe`, records the evaluated
/// model's agreement with the probe's reference after every epoch as "probe_agreement" (percent;
/// not part of the collapse rule: its level is not calibrated to test top-1). With `resume`,
/// continues from the checkpoint. Writes result.json at the end.
RunResult run_epochs(Trainable& trainable, const LoopOptions& options, const RunFolder& folder,
                     bool resume, data::BatchLoader* test, const eval::ProbeSet* probe = nullptr);

}  // namespace qimera::methods
