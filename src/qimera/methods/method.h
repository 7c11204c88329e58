// Quantization methods as a registry, like the model zoo: every method with its description, its
// presets and its factory, so the command line lists them all and tests iterate over them. A method
// owns its options struct (described once: core/options.h) and assembles shared parts; training
// methods run the one epoch loop (run_loop.h).
#pragma once

#include "qimera/core/options.h"
#include "qimera/data/preprocess.h"
#include "qimera/eval/evaluate.h"
#include "qimera/methods/run_loop.h"
#include "qimera/models/classifier.h"
#include "qimera/quant/convert.h"

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qimera::data {
class BatchLoader;
}
namespace qimera::eval {
struct ProbeSet;
}

namespace qimera::methods {

class DataFreeTrainer;

/// What a method runs on.
struct MethodContext {
  models::Classifier teacher;  // P: eval mode, on `device`
  c10::Device device = c10::kCPU;
  data::BatchLoader* test = nullptr;  // evaluated after epochs when given
  const eval::ProbeSet* probe = nullptr;  // agreement with the teacher after every epoch when given
  RunFolder folder;
  bool resume = false;
  uint64_t seed = 0;
  std::filesystem::path data_root;  // for methods that read data (PTQ on real images)
  data::Preprocess preprocess;      // the teacher's
  int workers = 2;                  // data-loading threads
};

/// One line of the result table.
struct ResultRow {
  std::string label;
  std::optional<eval::Accuracy> test;
  std::string note;
};

struct MethodOutcome {
  models::Classifier quantized;      // Q, ranges fixed
  quant::QuantConfig quantization;   // what the export records (the observer that set the ranges)
  std::vector<ResultRow> rows;
  nlohmann::json summary = nlohmann::json::object();
  std::optional<RunResult> run;      // training methods
};

class Method {
 public:
  virtual ~Method() = default;
  /// Every option of the method, once (flags, config.json and presets come from this).
  virtual void describe(OptionVisitor& v) = 0;
  /// Throws an Error naming the offending flag.
  virtual void validate() const = 0;
  /// Whether the method trains in epochs (checkpoints, --resume).
  virtual bool trains() const = 0;
  /// Bits and observers of Q (the naive baseline uses the same).
  virtual const quant::QuantConfig& quantization() const = 0;
  /// Runs in context.folder (already opened by run_method).
  virtual MethodOutcome run(const MethodContext& context) = 0;
  /// A generator-based method's trainer, built exactly as run() builds it, so that a run's
  /// checkpoint can be restored into it (the analyses read its generator); nullptr for methods
  /// without a generator.
  virtual std::unique_ptr<DataFreeTrainer> make_trainer(models::Classifier teacher,
                                                        c10::Device device) const;
};

struct PresetInfo {
  std::string name;
  std::string description;
  nlohmann::json options;  // a flat patch of option values
};

struct MethodInfo {
  std::string name;
  std::string description;
  std::function<std::unique_ptr<Method>()> make;  // with the method's defaults
  std::vector<PresetInfo> presets;
};

/// Every method, in a fixed order (the order of the paper's tables).
const std::vector<MethodInfo>& all_methods();
/// An unknown name is an Error that lists the known ones.
const MethodInfo& find_method(const std::string& name);
const PresetInfo& find_preset(const MethodInfo& method, const std::string& name);

/// Option values given on the command line, by option name (lists hold every repetition).
using GivenOptions = std::vector<std::pair<std::string, std::vector<std::string>>>;

/// The method with its defaults, then `saved` (a resumed run's options), then the preset, then the
/// given options; validated. A given option the method does not have is an Error naming the
/// methods that have it. With `saved`, options that differ from it and may not change on resume
/// are an Error that lists them all.
std::unique_ptr<Method> configure_method(const MethodInfo& info, const std::string& preset,
                                         const GivenOptions& given,
                                         const nlohmann::json* saved = nullptr);

/// Opens the run folder (config.json: method, options, teacher, `extra`) and runs the method.
MethodOutcome run_method(const MethodInfo& info, Method& method, const MethodContext& context,
                         const nlohmann::json& extra = nlohmann::json::object());

/// The options of a run folder's config.json ({"method": ..., "options": {...}}); an Error names
/// the file when it is missing or not a qimera run.
nlohmann::json saved_run_config(const RunFolder& folder);

}  // namespace qimera::methods
