#include "qimera/methods/run_loop.h"

#include "qimera/core/atomic_file.h"
#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/core/progress.h"
#include "qimera/methods/collapse.h"
#include "qimera/data/loader.h"
#include "qimera/eval/agreement.h"
#include "qimera/eval/evaluate.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace qimera::methods {
namespace fs = std::filesystem;

namespace {

// A non-finite loss, caught by run_epochs to stop or roll back.
class NonFiniteLoss : public Error {
 public:
  using Error::Error;
};

constexpr const char* kReserved[] = {"epoch", "test_top1", "test_top5", "seconds"};

bool reserved(const std::string& key) {
  for (const char* r : kReserved) {
    if (key == r) return true;
  }
  return false;
}

// In eval mode, as the test evaluation: Q's batch norms must not learn the probe's statistics.
double probe_agreement(models::ClassifierImpl& model, const eval::ProbeSet& probe) {
  return eval::in_eval_mode(
      model, [&] { return probe.agreement_of([&](const at::Tensor& x) { return model.forward(x); }).top1; });
}

void check_finite(const MetricSums& metrics, int64_t epoch, int64_t iteration) {
  if (metrics.any_nonfinite()) {
    throw NonFiniteLoss(fmt::format(
        "a loss became NaN or infinite in epoch {} (by iteration {}: {}); lower the learning rates, "
        "or pass --on-nan rollback to restart from the last checkpoint with lower learning rates",
        epoch + 1, iteration, fmt::join(metrics.nonfinite_names(), ", ")));
  }
}

EpochRecord train_epoch(Trainable& t, const LoopOptions& o, int64_t epoch, double lr_scale) {
  const auto start = std::chrono::steady_clock::now();
  EpochRecord record;
  record.epoch = epoch + 1;
  record.values = t.begin_epoch(epoch, lr_scale);
  const int64_t iterations = t.iterations(epoch);
  require(iterations >= 1, "epoch {} has no iterations (is the training set smaller than a batch?)",
          epoch + 1);
  ProgressBar bar(iterations, fmt::format("epoch {}/{}", epoch + 1, o.epochs));
  MetricSums metrics;
  std::string shown;
  for (int64_t it = 0; it < iterations; ++it) {
    t.iteration(epoch, metrics);
    if ((it + 1) % o.log_every == 0) {
      check_finite(metrics, epoch, it + 1);
      shown = metrics.summary();
    }
    bar.update(it + 1, shown);
  }
  check_finite(metrics, epoch, iterations);
  t.end_epoch(epoch);
  bar.finish(metrics.summary());
  for (auto& value : metrics.means()) record.values.push_back(std::move(value));
  record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return record;
}

// metrics.jsonl: one line per finished epoch, rewritten whole from the checkpoint's history, so the
// two never disagree (a kill between the checkpoint and this write is mended on resume).
void write_metrics(const RunFolder& folder, const std::vector<EpochRecord>& history) {
  std::string text;
  for (const auto& r : history) text += r.to_ordered_json().dump() + "\n";
  write_file_atomically(folder.metrics(), text);
}

}  // namespace

void LoopOptions::describe(OptionVisitor& v, bool with_epochs) {
  if (with_epochs) v.option({"epochs", "Epochs (may be raised when resuming)", true}, epochs);
  v.option({"eval_every", "Evaluate on the test data every N epochs (and after the last)", true},
           eval_every);
  v.option({"log_every", "Iterations between progress metrics (each reads the device)", true},
           log_every);
  v.option({"on_nan",
            "On a NaN/infinite loss: stop, or rollback to the last checkpoint with lower learning "
            "rates",
            true},
           TextValue{[this] { return std::string(on_nan == NanPolicy::Stop ? "stop" : "rollback"); },
                     [this](const std::string& s) {
                       require(s == "stop" || s == "rollback", "--on-nan {}: expected stop or rollback", s);
                       on_nan = s == "stop" ? NanPolicy::Stop : NanPolicy::Rollback;
                     }});
  v.option({"on_collapse",
            "When an epoch brings the model to 1.5x chance or less after it stood at 3x chance or "
            "more (test top-1, or Q's agreement with P on its training images): warn and go on, "
            "stop, or rollback to the last checkpoint with lower learning rates",
            true},
           TextValue{[this] {
                       return std::string(on_collapse == CollapsePolicy::Warn   ? "warn"
                                          : on_collapse == CollapsePolicy::Stop ? "stop"
                                                                                : "rollback");
                     },
                     [this](const std::string& s) {
                       require(s == "warn" || s == "stop" || s == "rollback",
                               "--on-collapse {}: expected warn, stop or rollback", s);
                       on_collapse = s == "warn"   ? CollapsePolicy::Warn
                                     : s == "stop" ? CollapsePolicy::Stop
                                                   : CollapsePolicy::Rollback;
                     }});
  v.option({"rollback_lr_factor", "Learning-rate factor applied at each rollback", true},
           rollback_lr_factor);
  v.option({"max_rollbacks", "Rollbacks allowed before the run stops (NaN and collapse together)", true},
           max_rollbacks);
}

void LoopOptions::validate() const {
  require(epochs >= 1, "--epochs must be at least 1, got {}", epochs);
  require(eval_every >= 1 && log_every >= 1, "--eval-every and --log-every must be at least 1");
  require(rollback_lr_factor > 0 && rollback_lr_factor < 1,
          "--rollback-lr-factor must be in (0, 1), got {}", rollback_lr_factor);
  require(max_rollbacks >= 0, "--max-rollbacks must not be negative, got {}", max_rollbacks);
}

double EpochRecord::value(const std::string& name) const {
  std::vector<std::string> names;
  for (const auto& [key, v] : values) {
    if (key == name) return v;
    names.push_back(key);
  }
  fail("epoch {} has no value '{}' (it has: {})", epoch, name, fmt::join(names, ", "));
}

bool EpochRecord::has(const std::string& name) const {
  for (const auto& [key, v] : values) {
    if (key == name) return true;
  }
  return false;
}

nlohmann::ordered_json EpochRecord::to_ordered_json() const {
  nlohmann::ordered_json j;
  j["epoch"] = epoch;
  for (const auto& [key, v] : values) j[key] = v;
  if (test) {
    j["test_top1"] = test->top1;
    j["test_top5"] = test->top5;
  }
  j["seconds"] = seconds;
  return j;
}

nlohmann::json EpochRecord::to_json() const { return nlohmann::json(to_ordered_json()); }

EpochRecord EpochRecord::from_json(const nlohmann::ordered_json& j) {
  require(j.is_object() && j.contains("epoch") && j.at("epoch").is_number_integer(),
          "an epoch record needs an integer 'epoch'");
  EpochRecord r;
  r.epoch = j.at("epoch").get<int64_t>();
  for (const auto& [key, v] : j.items()) {
    if (reserved(key)) continue;
    require(v.is_number(), "epoch {}: value '{}' is not a number", r.epoch, key);
    r.values.emplace_back(key, v.get<double>());
  }
  if (j.contains("test_top1")) {
    eval::Accuracy a;
    a.top1 = j.at("test_top1").get<double>();
    a.top5 = j.value("test_top5", 0.0);
    r.test = a;
  }
  r.seconds = j.value("seconds", 0.0);
  return r;
}

bool RunFolder::holds_run() const { return fs::exists(checkpoint()) || fs::exists(config()); }

void open_run(const RunFolder& folder, const nlohmann::json& config, bool resume) {
  if (resume) {
    require(fs::exists(folder.checkpoint()),
            "--resume: there is nothing to resume in {} (no checkpoint.pt); start the run without "
            "--resume",
            folder.dir.string());
  } else {
    require(!folder.holds_run(),
            "{} already holds a run: pass --resume to continue it, or choose another --out",
            folder.dir.string());
  }
  fs::create_directories(folder.dir);
  write_json(folder.config(), config);
}

RunResult run_epochs(Trainable& trainable, const LoopOptions& options, const RunFolder& folder,
                     bool resume, data::BatchLoader* test, const eval::ProbeSet* probe) {
  options.validate();
  const auto start = std::chrono::steady_clock::now();
  const auto state = trainable.state();
  RunResult result;
  double lr_scale = 1.0;
  int rollbacks = 0;
  double earlier_sessions = 0;  // carried by the checkpoint, so a resumed run's time is the whole run's
  double restored_seconds = 0;  // what the last restored checkpoint had spent
  auto since_start = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  auto restore_extra = [&](const CheckpointInfo& info) {
    lr_scale = info.extra.value("lr_scale", 1.0);
    rollbacks = info.extra.value("rollbacks", 0);
    result.history.clear();
    // The history is kept as metrics.jsonl's lines: their key order is the order of the values.
    for (const auto& line : info.extra.value("history", nlohmann::json::array())) {
      require(line.is_string(), "{}: a history entry is not a metrics line", folder.checkpoint().string());
      result.history.push_back(EpochRecord::from_json(nlohmann::ordered_json::parse(line.get<std::string>())));
    }
    require(static_cast<int64_t>(result.history.size()) == info.next_epoch,
            "{}: the checkpoint is at epoch {} but records {} epochs", folder.checkpoint().string(),
            info.next_epoch, result.history.size());
    // Checkpoints from before "seconds": the recorded epochs' own seconds (training only).
    double recorded = 0;
    for (const auto& r : result.history) recorded += r.seconds;
    restored_seconds = info.extra.value("seconds", recorded);
    write_metrics(folder, result.history);
    return info.next_epoch;
  };
  auto restore = [&] {
    const auto info = load_checkpoint(folder.checkpoint(), state);
    try {
      return restore_extra(info);
    } catch (const nlohmann::json::exception& e) {
      // The integrity record only proves the bytes are as written, not that a writer wrote
      // numbers where this reader expects them.
      fail("{}: the checkpoint's run record is malformed: {}", folder.checkpoint().string(), e.what());
    }
  };
  auto save = [&](int64_t next_epoch) {
    nlohmann::json history = nlohmann::json::array();
    for (const auto& r : result.history) history.push_back(r.to_ordered_json().dump());
    save_checkpoint(folder.checkpoint(), state, next_epoch,
                    {{"lr_scale", lr_scale},
                     {"rollbacks", rollbacks},
                     {"history", history},
                     {"seconds", earlier_sessions + since_start()}});
    write_metrics(folder, result.history);
  };

  int64_t epoch = 0;
  auto roll_back = [&](const std::string& why) {
    // From the rates in effect, not the checkpoint's: a second rollback to the same checkpoint
    // must lower them again, or it repeats the failed epoch exactly (same rates, same random state).
    const int done = rollbacks + 1;
    const double scale = lr_scale * options.rollback_lr_factor;
    epoch = restore();
    rollbacks = done;
    lr_scale = scale;
    spdlog::warn("{}; rolled back to epoch {} with learning rates x{} (rollback {}/{})", why, epoch + 1,
                 lr_scale, rollbacks, options.max_rollbacks);
  };
  const int64_t classes = trainable.evaluated().classifier_weight().size(0);
  if (resume) {
    epoch = restore();
    earlier_sessions = restored_seconds;  // not on a rollback: this session's time already counts
    spdlog::info("resuming {} at epoch {}", folder.dir.string(), epoch + 1);
  } else {
    save(0);  // the starting point, for --on-nan rollback
  }
  while (epoch < options.epochs) {
    EpochRecord record;
    try {
      record = train_epoch(trainable, options, epoch, lr_scale);
    } catch (const NonFiniteLoss& e) {
      if (options.on_nan != NanPolicy::Rollback || rollbacks >= options.max_rollbacks) throw;
      roll_back(e.what());
      continue;
    }
    const bool last = epoch + 1 == options.epochs;
    if (test && ((epoch + 1) % options.eval_every == 0 || last)) {
      record.test = eval::evaluate_model(trainable.evaluated(), *test);
      spdlog::info("epoch {}/{}: test top-1 {:.2f}%", epoch + 1, options.epochs, record.test->top1);
    }
    if (probe) {
      record.values.emplace_back("probe_agreement", probe_agreement(trainable.evaluated(), *probe));
      spdlog::info("epoch {}/{}: agreement with the teacher on the probe {:.2f}%", epoch + 1, options.epochs,
                   record.values.back().second);
    }
    if (const auto collapse = find_collapse(result.history, record, classes)) {
      const auto why = collapse->describe();
      if (options.on_collapse == CollapsePolicy::Rollback && rollbacks < options.max_rollbacks) {
        roll_back(why);
        continue;
      }
      // The collapsed epoch is not saved: the checkpoint still holds the one before it.
      const bool stop = options.on_collapse == CollapsePolicy::Stop;
      require(options.on_collapse == CollapsePolicy::Warn,
              "{}: {}. Stopped {}; the checkpoint holds epoch {}. {} (--resume continues from the "
              "checkpoint)",
              folder.dir.string(), why,
              stop ? std::string("(--on-collapse stop)")
                   : fmt::format("after {} rollbacks (--max-rollbacks)", rollbacks),
              epoch,
              stop ? "Lower the learning rates, or pass --on-collapse rollback"
                   : "Rollbacks restart from a model already damaged: rerun with lower learning rates");
      spdlog::warn("{}: {}; going on (--on-collapse warn)", folder.dir.string(), why);
    }
    result.history.push_back(record);
    ++epoch;
    save(epoch);
  }
  require(!result.history.empty(), "{}: the run has no finished epoch", folder.dir.string());
  result.final_epoch = result.history.back();
  for (const auto& r : result.history) {
    if (r.test && (!result.best_epoch || r.test->top1 > result.best_epoch->test->top1)) {
      result.best_epoch = r;
    }
  }
  for (const auto& c : collapses_in(result.history, classes)) result.collapses.push_back(c.describe());
  result.seconds = since_start();
  result.seconds_all_sessions = earlier_sessions + result.seconds;
  nlohmann::json summary{{"final_epoch", result.final_epoch->to_json()},
                         {"seconds_this_session", result.seconds},
                         {"seconds_all_sessions", result.seconds_all_sessions},
                         {"collapses", result.collapses}};
  if (result.best_epoch) summary["best_epoch_selected_on_test_set"] = result.best_epoch->to_json();
  write_json(folder.result(), summary);
  return result;
}

}  // namespace qimera::methods
