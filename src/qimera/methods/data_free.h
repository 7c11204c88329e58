// Data-free quantization by generative knowledge distillation: GDFQ and Qimera (method.md sections
// 2-6). A generator G learns to synthesize images the frozen teacher P classifies as their labels
// and whose batch-norm statistics match P's; the fake-quantized copy Q of P learns from P on those
// images. Qimera adds superposed embeddings (SE), the disentanglement mapping (DM) and extracted
// embedding initialization (EEI).
#pragma once

#include "qimera/data/loader.h"
#include "qimera/eval/evaluate.h"
#include "qimera/generator/generator.h"
#include "qimera/methods/schedule.h"
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

namespace torch::optim {
class Adam;
class SGD;
}  // namespace torch::optim

namespace qimera::methods {

enum class Method {
  Gdfq,    // ordinary batches only, no DM, random embeddings
  Qimera,  // superposed embeddings (+ DM and EEI as configured)
};
std::string to_string(Method method);
Method parse_method(const std::string& name);

enum class NanPolicy { Stop, Rollback };

struct DataFreeOptions {
  Method method = Method::Qimera;
  quant::QuantConfig quant;  // bits, observer (bias-corrected EMA by default), STE

  // Generator and Qimera's additions. GDFQ ignores superposition, DM and EEI.
  generator::SuperpositionOptions superposition{2, 0.4};
  bool disentangle = false;  // DM (the reference's scripts leave it off; the paper's tables use it)
  int64_t disentangle_dim = 100;
  generator::EmbeddingInit embedding_init = generator::EmbeddingInit::Random;
  bool freeze_embeddings = false;
  std::optional<bool> conditional_bn;  // default: on for ImageNet-size inputs (>= 64 pixels)

  // Schedule (reference values for CIFAR).
  int64_t epochs = 400;
  int64_t iterations = 200;  // per epoch
  int64_t batch_size = 200;
  int64_t warmup_epochs = 4;   // Q is not updated during these epochs (G is)
  int64_t observe_epochs = 4;  // activation ranges follow the data during these epochs, then fixed
  double lr_g = 1e-3, adam_beta1 = 0.5, adam_beta2 = 0.999;
  double lr_q = 1e-4, momentum = 0.9, weight_decay = 1e-4;
  LrSchedule schedule{LrSchedule::Kind::MultiStep, {100, 200, 300}, 0.1};  // both learning rates

  // Losses.
  double bns_weight = 0.1;
  double temperature = 20;
  double alpha = 1;

  int64_t eval_every = 1;  // epochs between test evaluations (the last epoch is always evaluated)
  int64_t log_every = 50;  // iterations between metric reads (each is a device synchronisation)
  NanPolicy on_nan = NanPolicy::Stop;
  double rollback_lr_factor = 0.5;
  int max_rollbacks = 3;
  uint64_t seed = 0;

  /// The options with the method's semantics applied (GDFQ: no SE, DM or EEI).
  DataFreeOptions effective() const;
  void validate() const;
  nlohmann::json to_json() const;
};

/// Losses of one iteration, as device tensors (reading them synchronises).
struct IterationLosses {
  at::Tensor generator, ce, bns, quantized, agreement;
  bool superposed = false;
  bool quantized_updated = false;
};

/// Marks the end of a phase of an iteration; the benchmark passes one (and synchronises in it).
using PhaseMarker = std::function<void(const char* phase)>;

struct EpochRecord {
  int64_t epoch = 0;  // 1-based
  double lr_g = 0, lr_q = 0;
  double loss_g = 0, loss_ce = 0, loss_bns = 0, loss_q = 0;
  double teacher_agreement = 0;  // % of synthetic images P classifies as their (main) label
  double superposed_share = 0;   // of this epoch's batches
  std::optional<eval::Accuracy> test;
  double seconds = 0;
  nlohmann::json to_json() const;
  static EpochRecord from_json(const nlohmann::json& j);
};

struct DataFreeResult {
  std::vector<EpochRecord> history;  // every epoch of the run, including resumed ones
  std::optional<EpochRecord> final_epoch, best_epoch;  // best: selected on the test set
  double seconds = 0;
};

class DataFreeTrainer {
 public:
  /// `teacher` is P (frozen, eval mode, on `device`). Q is an exact copy converted by
  /// options.quant; G is built for P's input and feature sizes.
  DataFreeTrainer(models::Classifier teacher, DataFreeOptions options, c10::Device device);
  ~DataFreeTrainer();

  /// Runs the remaining epochs. `run_dir` gets config.json, metrics.jsonl, checkpoint.pt (every
  /// epoch, atomically) and result.json. With `test`, evaluates Q every eval_every epochs.
  DataFreeResult run(const std::filesystem::path& run_dir, bool resume, data::BatchLoader* test,
                     const nlohmann::json& provenance = nlohmann::json::object());

  /// One training iteration at `epoch` (learning rates and observer state are the caller's).
  IterationLosses step(int64_t epoch, const PhaseMarker& mark = nullptr);

  /// Sets learning rates and activation-range observing for `epoch`.
  void begin_epoch(int64_t epoch);

  models::Classifier teacher() const { return teacher_; }
  models::Classifier quantized() const { return quantized_; }
  generator::Generator generator() const { return generator_; }
  const DataFreeOptions& options() const { return options_; }

 private:
  EpochRecord train_epoch(int64_t epoch, double lr_scale);
  void check_finite(const at::Tensor& flag, int64_t epoch, int64_t iteration) const;

  DataFreeOptions options_;
  c10::Device device_;
  models::Classifier teacher_, quantized_;
  generator::Generator generator_{nullptr};
  std::unique_ptr<torch::optim::Adam> optimizer_g_;
  std::unique_ptr<torch::optim::SGD> optimizer_q_;
  double lr_scale_ = 1.0;  // lowered by NaN rollbacks
};

}  // namespace qimera::methods
