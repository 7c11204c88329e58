// qimera quantize: post-training quantization (ptq) and the data-free methods (gdfq, qimera).
#include "commands.h"
#include "common.h"
#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/core/progress.h"
#include "qimera/core/table.h"
#include "qimera/data/loader.h"
#include "qimera/deploy/model_card.h"
#include "qimera/deploy/quantized_model.h"
#include "qimera/eval/evaluate.h"
#include "qimera/methods/data_free.h"
#include "qimera/methods/presets.h"
#include "qimera/methods/ptq.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <optional>

namespace qimera::cli {
namespace {
namespace fs = std::filesystem;
using methods::DataFreeOptions;

struct QuantizeOptions {
  CommonOptions common;
  std::string method = "qimera";
  std::string model;
  std::string weights;
  std::string preset;
  std::vector<std::string> layer_overrides;
  std::string observer;  // empty: minmax for ptq, the preset's / ema for data-free
  std::string ste = "unclipped";
  std::string embedding_init = "random";
  std::string schedule = "multistep:100,200,300";
  std::string conditional_bn = "auto";
  std::string on_nan = "stop";
  std::string calib_data = "noise";
  int64_t calib_batches = 8;
  int64_t calib_batch_size = 64;
  std::string test_data;
  int64_t test_limit = 0;
  std::string out = "runs/quantize";
  bool resume = false;
  bool no_export = false;
  DataFreeOptions flags;  // values typed on the command line (or library defaults)
};

// Flags that a preset may set: only those given explicitly override the preset.
class PresetOverrides {
 public:
  explicit PresetOverrides(DataFreeOptions& flags) : flags_(flags) {}

  template <typename Access>
  CLI::Option* option(CLI::App* cmd, const std::string& name, Access access, const std::string& help) {
    auto* opt = cmd->add_option(name, access(flags_), help)->capture_default_str();
    copies_.push_back([opt, access](DataFreeOptions& dst, DataFreeOptions& src) {
      if (opt->count()) access(dst) = access(src);
    });
    return opt;
  }
  template <typename Access>
  CLI::Option* flag(CLI::App* cmd, const std::string& name, Access access, const std::string& help) {
    auto* opt = cmd->add_flag(name, access(flags_), help);
    copies_.push_back([opt, access](DataFreeOptions& dst, DataFreeOptions& src) {
      if (opt->count()) access(dst) = access(src);
    });
    return opt;
  }
  void apply(DataFreeOptions& target) {
    for (auto& copy : copies_) copy(target, flags_);
  }

 private:
  DataFreeOptions& flags_;
  std::vector<std::function<void(DataFreeOptions&, DataFreeOptions&)>> copies_;
};

struct Registered {
  QuantizeOptions options;
  std::unique_ptr<PresetOverrides> overrides;
  CLI::Option* observer = nullptr;
  CLI::Option* schedule = nullptr;
  CLI::Option* embedding_init = nullptr;
  CLI::Option* conditional_bn = nullptr;
  CLI::Option* ste = nullptr;
};

Registered& registered() {
  static Registered r;
  return r;
}

// The final data-free options: library defaults, then the preset, then explicit flags.
DataFreeOptions resolve_options(Registered& r) {
  auto& o = r.options;
  DataFreeOptions result;
  if (!o.preset.empty()) methods::find_preset(o.preset).apply(result);
  r.overrides->apply(result);
  result.method = methods::parse_method(o.method);
  if (r.observer->count()) result.quant.observer.kind = quant::parse_observer(o.observer);
  if (r.ste->count()) result.quant.ste = quant::parse_ste(o.ste);
  if (r.schedule->count()) result.schedule = methods::LrSchedule::parse(o.schedule, result.schedule.gamma);
  if (r.embedding_init->count()) {
    result.embedding_init = generator::parse_embedding_init(o.embedding_init);
  }
  if (r.conditional_bn->count() && o.conditional_bn != "auto") {
    require(o.conditional_bn == "on" || o.conditional_bn == "off",
            "--generator-cbn {}: expected auto, on or off", o.conditional_bn);
    result.conditional_bn = o.conditional_bn == "on";
  }
  require(o.on_nan == "stop" || o.on_nan == "rollback", "--on-nan {}: expected stop or rollback", o.on_nan);
  result.on_nan = o.on_nan == "stop" ? methods::NanPolicy::Stop : methods::NanPolicy::Rollback;
  for (const auto& text : o.layer_overrides) result.quant.overrides.push_back(quant::parse_layer_override(text));
  result.seed = o.common.seed;
  return result.effective();
}

// PTQ takes the bits, overrides and STE from the flags (no preset applies).
quant::QuantConfig ptq_config(Registered& r) {
  DataFreeOptions explicit_flags;
  r.overrides->apply(explicit_flags);
  auto config = explicit_flags.quant;
  for (const auto& text : r.options.layer_overrides) {
    config.overrides.push_back(quant::parse_layer_override(text));
  }
  if (r.ste->count()) config.ste = quant::parse_ste(r.options.ste);
  return config;
}

std::optional<data::BatchLoader> make_loader(const QuantizeOptions& o, const std::string& spec,
                                             int64_t limit, int64_t batch_size,
                                             const data::Preprocess& preprocess, c10::Device device) {
  if (spec.empty() || spec == "none") return std::nullopt;
  auto dataset = open_data(spec, o.common);
  if (limit > 0) dataset = data::first_n(dataset, limit);
  data::LoaderOptions loading;
  loading.batch_size = batch_size;
  loading.workers = o.common.workers;
  loading.device = device;
  loading.shuffle = false;
  return std::make_optional<data::BatchLoader>(dataset, preprocess, loading);
}

methods::BatchSource calibration_source(const QuantizeOptions& o, const deploy::ModelCard& card,
                                        c10::Device device) {
  if (o.calib_data == "noise") {
    return methods::gaussian_batches(card.spec, o.calib_batch_size, device, o.common.seed + 1);
  }
  auto dataset = open_data(o.calib_data, o.common);
  data::LoaderOptions loading;
  loading.batch_size = o.calib_batch_size;
  loading.shuffle = true;
  loading.seed = o.common.seed;
  loading.workers = o.common.workers;
  loading.device = device;
  auto loader = std::make_shared<data::BatchLoader>(dataset, card.preprocess, loading);
  require(loader->batches_per_epoch() >= o.calib_batches, "--calib-data has {} batches, {} requested",
          loader->batches_per_epoch(), o.calib_batches);
  return [loader] { return loader->next()->images; };
}

std::string percent(const std::optional<eval::Accuracy>& acc) {
  return acc ? fmt::format("{:.2f}", acc->top1) : std::string("-");
}

void run_quantize(Registered& r) {
  auto& o = r.options;
  const auto device = apply_common_options(o.common);
  const auto card = deploy::resolve_model(o.model, o.weights);
  auto teacher = deploy::load_classifier(card, device);
  spdlog::info("teacher: {}", card.spec.describe());
  auto test = make_loader(o, o.test_data, o.test_limit, 500, card.preprocess, device);
  auto evaluate = [&](models::ClassifierImpl& model, const std::string& label) -> std::optional<eval::Accuracy> {
    if (!test) return std::nullopt;
    return eval::evaluate_model(model, *test, label);
  };
  const bool ptq = o.method == "ptq";
  const DataFreeOptions options = ptq ? DataFreeOptions{} : resolve_options(r);
  methods::CalibrationOptions calibration;
  calibration.batches = o.calib_batches;
  if (r.observer->count()) calibration.observer.kind = quant::parse_observer(o.observer);
  quant::QuantConfig config = ptq ? ptq_config(r) : options.quant;
  // The summary and the export record the observer that set the ranges, not the data-free default.
  if (ptq) config.observer = calibration.observer;
  fs::create_directories(o.out);
  Table table({"model", "top-1 %", "note"});
  nlohmann::json summary{{"command", command_line()}, {"teacher", card.spec.to_json()},
                         {"quantization", config.to_json()}};
  const auto fp = evaluate(*teacher, "full precision");
  table.add_row({"full precision", percent(fp), ""});
  if (fp) summary["full_precision"] = fp->to_json();

  models::Classifier result_model;
  if (ptq) {
    result_model = methods::post_training_quantize(*teacher, config, calibration,
                                                   calibration_source(o, card, device));
    const auto acc = evaluate(*result_model, "ptq " + config.short_name());
    const std::string note = fmt::format("{} observer, calibrated on {} x {} {}",
                                         quant::to_string(calibration.observer.kind), o.calib_batches,
                                         o.calib_batch_size, o.calib_data == "noise" ? "N(0,1) noise" : o.calib_data);
    table.add_row({"ptq " + config.short_name(), percent(acc), note});
    summary["ptq"] = {{"calibration", note}};
    if (acc) summary["ptq"]["test"] = acc->to_json();
  } else {
    // The naive starting point: the same quantization, ranges calibrated on noise, no training.
    methods::CalibrationOptions naive;
    auto naive_model = methods::post_training_quantize(
        *teacher, config, naive, methods::gaussian_batches(card.spec, 64, device, o.common.seed + 1));
    const auto naive_acc = evaluate(*naive_model, "naive " + config.short_name());
    table.add_row({"naive " + config.short_name(), percent(naive_acc),
                   "no training: ranges from 8 batches of N(0,1) noise"});
    if (naive_acc) summary["naive"] = naive_acc->to_json();
    naive_model.reset();

    methods::DataFreeTrainer trainer(teacher, options, device);
    spdlog::info("{}: {} epochs x {} iterations, batch {}, observer {}, SE K={} p={}, DM {}, embeddings {}",
                 methods::to_string(options.method), options.epochs, options.iterations,
                 options.batch_size, quant::to_string(options.quant.observer.kind),
                 options.superposition.k, options.superposition.p, options.disentangle ? "on" : "off",
                 generator::to_string(options.embedding_init));
    const auto result = trainer.run(o.out, o.resume, test ? &*test : nullptr,
                                    {{"command", command_line()}, {"preset", o.preset}});
    result_model = trainer.quantized();
    const std::string name = methods::to_string(options.method) + " " + config.short_name();
    table.add_row({name, percent(result.final_epoch->test), fmt::format("final epoch ({})", options.epochs)});
    if (result.best_epoch) {
      table.add_row({name, percent(result.best_epoch->test),
                     fmt::format("best epoch ({}), selected on the test set", result.best_epoch->epoch)});
    }
    summary["method"] = methods::to_string(options.method);
    summary["final_epoch"] = result.final_epoch->to_json();
    if (result.best_epoch) summary["best_epoch_selected_on_test_set"] = result.best_epoch->to_json();
    summary["options"] = options.to_json();
  }
  std::string export_line;
  if (!o.no_export) {
    const auto exported = deploy::export_quantized(
        *result_model, config, card.preprocess, fs::path(o.out) / "quantized.json",
        fs::path(o.model).extension() == ".json" ? fs::path(o.model) : fs::path(),
        {{"command", command_line()}});
    summary["export"] = {{"manifest", exported.manifest.string()},
                         {"weights", exported.weights.string()},
                         {"file_bytes", exported.file_bytes},
                         {"float32_bytes", exported.float32_bytes}};
    export_line = fmt::format("integer export: {} + {} ({} bytes, {:.1f}% of float32's {} bytes)\n",
                              exported.manifest.string(), exported.weights.filename().string(),
                              exported.file_bytes, 100 * exported.ratio(), exported.float32_bytes);
  }
  write_json(fs::path(o.out) / "summary.json", summary);
  fmt::print("{}{}", test ? fmt::format("{}\n", "test accuracy:") : std::string(), table.render());
  fmt::print("run folder: {} ({})\n", o.out,
             ptq ? "summary.json" : "config.json, metrics.jsonl, checkpoint.pt, summary.json");
  fmt::print("{}", export_line);
}

}  // namespace

void add_quantize_command(CLI::App& app) {
  auto& r = registered();
  auto& o = r.options;
  r.overrides = std::make_unique<PresetOverrides>(o.flags);
  auto& p = *r.overrides;
  std::string presets;
  for (const auto& preset : methods::data_free_presets()) {
    presets += fmt::format("\n  {}: {}", preset.name, preset.description);
  }
  auto* cmd = app.add_subcommand(
      "quantize",
      "Quantize a full-precision model. --method ptq calibrates activation ranges on real data or "
      "noise; --method gdfq / qimera fine-tune the quantized model on synthetic images without "
      "any real data. Writes the run folder (config, metrics.jsonl, checkpoint, summary.json) and "
      "an integer export (quantized.json + quantized.safetensors).");
  cmd->footer("Presets (--preset) set the schedule; flags given explicitly override them:" + presets);
  add_common_options(*cmd, o.common);
  cmd->add_option("--method", o.method, "ptq, gdfq (no SE/DM/EEI) or qimera")->capture_default_str();
  cmd->add_option("--model", o.model, "Model card (.json) or pytorchcv preset name with --weights")->required();
  cmd->add_option("--weights", o.weights, "State dict (.pth/.pt/.safetensors), overrides a card's");
  cmd->add_option("--preset", o.preset, "Named settings (see below)");
  p.option(cmd, "--wbits", [](DataFreeOptions& d) -> int& { return d.quant.weight_bits; }, "Weight bits (2-8)");
  p.option(cmd, "--abits", [](DataFreeOptions& d) -> int& { return d.quant.act_bits; }, "Activation bits (2-8)");
  cmd->add_option("--layer", o.layer_overrides,
                  "Per-layer override PATTERN=BITS, PATTERN=WxA or PATTERN=float; PATTERN is a glob "
                  "on module names or @first / @last (repeatable, last match wins)");
  r.observer = cmd->add_option("--observer", o.observer,
                               "Activation range observer: ema (bias-corrected), reference-ema "
                               "(exact reproduction), minmax, percentile; default minmax for ptq, ema "
                               "for data-free unless a preset says otherwise");
  r.ste = cmd->add_option("--ste", o.ste, "Straight-through gradient: unclipped (reference) or clipped")
              ->capture_default_str();
  cmd->add_option("--calib-data", o.calib_data, "ptq: calibration data spec, or 'noise' for N(0,1)")
      ->capture_default_str();
  cmd->add_option("--calib-batches", o.calib_batches, "ptq: calibration batches")->capture_default_str();
  cmd->add_option("--calib-batch-size", o.calib_batch_size, "ptq: calibration batch size")->capture_default_str();
  p.option(cmd, "--epochs", [](DataFreeOptions& d) -> int64_t& { return d.epochs; }, "Epochs");
  p.option(cmd, "--iterations", [](DataFreeOptions& d) -> int64_t& { return d.iterations; }, "Iterations per epoch");
  p.option(cmd, "--batch-size", [](DataFreeOptions& d) -> int64_t& { return d.batch_size; }, "Synthetic batch size");
  p.option(cmd, "--warmup-epochs", [](DataFreeOptions& d) -> int64_t& { return d.warmup_epochs; },
           "Epochs at the start that train only the generator");
  p.option(cmd, "--observe-epochs", [](DataFreeOptions& d) -> int64_t& { return d.observe_epochs; },
           "Epochs at the start during which activation ranges follow the data (then fixed)");
  p.option(cmd, "--lr-g", [](DataFreeOptions& d) -> double& { return d.lr_g; }, "Generator learning rate (Adam)");
  p.option(cmd, "--adam-beta1", [](DataFreeOptions& d) -> double& { return d.adam_beta1; }, "Generator Adam beta1");
  p.option(cmd, "--adam-beta2", [](DataFreeOptions& d) -> double& { return d.adam_beta2; }, "Generator Adam beta2");
  p.option(cmd, "--lr-q", [](DataFreeOptions& d) -> double& { return d.lr_q; },
           "Quantized model learning rate (SGD, Nesterov)");
  p.option(cmd, "--momentum", [](DataFreeOptions& d) -> double& { return d.momentum; }, "Quantized model SGD momentum");
  p.option(cmd, "--weight-decay", [](DataFreeOptions& d) -> double& { return d.weight_decay; },
           "Quantized model weight decay");
  r.schedule = cmd->add_option("--lr-schedule", o.schedule,
                               "Schedule of both learning rates: constant, cosine, multistep:E1,E2,...")
                   ->capture_default_str();
  p.option(cmd, "--lr-gamma", [](DataFreeOptions& d) -> double& { return d.schedule.gamma; },
           "Multi-step decay factor");
  p.option(cmd, "--bns-weight", [](DataFreeOptions& d) -> double& { return d.bns_weight; },
           "Weight of the batch-norm statistics loss in the generator's loss");
  p.option(cmd, "--temperature", [](DataFreeOptions& d) -> double& { return d.temperature; },
           "Distillation temperature T");
  p.option(cmd, "--alpha", [](DataFreeOptions& d) -> double& { return d.alpha; }, "Distillation weight");
  p.option(cmd, "--se-k", [](DataFreeOptions& d) -> int64_t& { return d.superposition.k; },
           "Qimera: classes mixed per superposed sample (K)");
  p.option(cmd, "--se-p", [](DataFreeOptions& d) -> double& { return d.superposition.p; },
           "Qimera: share of superposed batches (p)");
  p.flag(cmd, "--dm,!--no-dm", [](DataFreeOptions& d) -> bool& { return d.disentangle; },
         "Qimera: disentanglement mapping layer on (off in the reference's scripts)");
  p.option(cmd, "--dm-dim", [](DataFreeOptions& d) -> int64_t& { return d.disentangle_dim; },
           "Qimera: output width d of the disentanglement mapping");
  r.embedding_init = cmd->add_option("--embedding-init", o.embedding_init,
                                     "Qimera: random, or extracted (EEI: from the teacher's last layer)")
                         ->capture_default_str();
  p.flag(cmd, "--freeze-embeddings", [](DataFreeOptions& d) -> bool& { return d.freeze_embeddings; },
         "Qimera: keep the class embeddings fixed");
  r.conditional_bn = cmd->add_option("--generator-cbn", o.conditional_bn,
                                     "Categorical conditional BN in the generator: auto (on for inputs "
                                     ">= 64 pixels, as the reference's ImageNet generator), on, off")
                         ->capture_default_str();
  p.option(cmd, "--eval-every", [](DataFreeOptions& d) -> int64_t& { return d.eval_every; },
           "Evaluate on --test-data every N epochs (and after the last)");
  p.option(cmd, "--log-every", [](DataFreeOptions& d) -> int64_t& { return d.log_every; },
           "Iterations between progress metrics (each reads the device)");
  cmd->add_option("--on-nan", o.on_nan, "On a NaN/inf loss: stop, or rollback to the last checkpoint "
                                        "with lower learning rates")
      ->capture_default_str();
  cmd->add_option("--test-data", o.test_data, "Test data to report accuracy on (e.g. fashion-mnist:test)");
  cmd->add_option("--test-limit", o.test_limit, "Evaluate only the first N test images (0: all)")
      ->capture_default_str();
  cmd->add_option("--out", o.out, "Run folder")->capture_default_str();
  cmd->add_flag("--resume", o.resume, "Continue the data-free run in --out from its checkpoint");
  cmd->add_flag("--no-export", o.no_export, "Skip the integer export");
  cmd->callback([] { run_quantize(registered()); });
}

}  // namespace qimera::cli
