#include "qimera/methods/data_free.h"

#include "qimera/core/error.h"
#include "qimera/core/json_file.h"
#include "qimera/core/progress.h"
#include "qimera/methods/checkpoint.h"
#include "qimera/methods/losses.h"
#include "qimera/models/zoo.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

#include <chrono>

namespace qimera::methods {
namespace fs = std::filesystem;

namespace {

// A non-finite loss, caught by run() to stop or roll back.
class NonFiniteLoss : public Error {
 public:
  using Error::Error;
};

std::vector<at::Tensor> trainable(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> out;
  for (const auto& p : params) {
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

generator::GeneratorOptions generator_options(const models::ClassifierImpl& teacher,
                                              const DataFreeOptions& o) {
  const auto& spec = teacher.spec();
  generator::GeneratorOptions g(spec.num_classes, spec.image_size, spec.in_channels,
                                teacher.feature_dim());
  g.disentangle = o.disentangle;
  g.disentangle_dim = o.disentangle_dim;
  g.conditional_bn = o.conditional_bn.value_or(spec.image_size >= 64);
  g.embedding_init = o.embedding_init;
  g.freeze_embeddings = o.freeze_embeddings;
  return g;
}

// Sums of the per-iteration losses, kept on the device.
struct Accumulator {
  at::Tensor g, ce, bns, q, agreement, nonfinite;
  int64_t iterations = 0, q_updates = 0, superposed = 0;

  void add(const IterationLosses& l) {
    at::NoGradGuard no_grad;
    auto finite = at::isfinite(l.generator);
    if (l.quantized_updated) finite = finite.logical_and(at::isfinite(l.quantized));
    if (!g.defined()) {
      g = at::zeros_like(l.generator);
      ce = at::zeros_like(l.generator);
      bns = at::zeros_like(l.generator);
      q = at::zeros_like(l.generator);
      agreement = at::zeros_like(l.generator);
      nonfinite = at::zeros_like(finite);
    }
    g += l.generator.detach();
    ce += l.ce.detach();
    bns += l.bns.detach();
    agreement += l.agreement;
    if (l.quantized_updated) {
      q += l.quantized.detach();
      ++q_updates;
    }
    nonfinite.logical_or_(finite.logical_not());
    ++iterations;
    superposed += l.superposed;
  }
  double mean(const at::Tensor& sum, int64_t n) const {
    return n > 0 ? sum.item<double>() / static_cast<double>(n) : 0.0;
  }
  std::string summary() const {
    return fmt::format("G {:.3f} (ce {:.3f} bns {:.3f}) Q {} P-agree {:.1f}%", mean(g, iterations),
                       mean(ce, iterations), mean(bns, iterations),
                       q_updates ? fmt::format("{:.4f}", mean(q, q_updates)) : std::string("warm-up"),
                       100 * mean(agreement, iterations));
  }
};

}  // namespace

std::string to_string(Method method) { return method == Method::Gdfq ? "gdfq" : "qimera"; }

Method parse_method(const std::string& name) {
  if (name == "gdfq") return Method::Gdfq;
  if (name == "qimera") return Method::Qimera;
  fail("unknown data-free method '{}': expected gdfq or qimera", name);
}

DataFreeOptions DataFreeOptions::effective() const {
  DataFreeOptions o = *this;
  if (o.method == Method::Gdfq) {
    o.superposition.p = 0.0;
    o.disentangle = false;
    o.embedding_init = generator::EmbeddingInit::Random;
    o.freeze_embeddings = false;
  }
  return o;
}

void DataFreeOptions::validate() const {
  quant.validate();
  superposition.validate();
  require(epochs >= 1 && iterations >= 1 && batch_size >= 1,
          "--epochs, --iterations and --batch-size must be at least 1");
  require(warmup_epochs >= 0 && observe_epochs >= 0,
          "--warmup-epochs and --observe-epochs must not be negative");
  require(observe_epochs >= 1 || quant.observer.kind == quant::ObserverKind::MinMax ||
              quant.observer.kind == quant::ObserverKind::Percentile,
          "--observe-epochs 0 would leave the activation ranges empty");
  require(lr_g > 0 && lr_q > 0, "learning rates must be positive");
  require(momentum >= 0 && momentum < 1, "--momentum must be in [0, 1)");
  require(weight_decay >= 0 && bns_weight >= 0 && alpha >= 0, "loss weights must not be negative");
  require(temperature > 0, "--temperature must be positive");
  require(eval_every >= 1 && log_every >= 1, "--eval-every and --log-every must be at least 1");
  require(rollback_lr_factor > 0 && rollback_lr_factor < 1, "--rollback-lr-factor must be in (0, 1)");
  if (quant.observer.kind == quant::ObserverKind::ReferenceEma && observe_epochs * iterations < 200) {
    spdlog::warn("the reference EMA observer needs ~200 updates to settle and gets {}: its ranges "
                 "will be far too wide (use the default bias-corrected 'ema')",
                 observe_epochs * iterations);
  }
}

nlohmann::json DataFreeOptions::to_json() const {
  return {{"method", to_string(method)},
          {"quantization", quant.to_json()},
          {"superposition", superposition.to_json()},
          {"disentangle", disentangle},
          {"disentangle_dim", disentangle_dim},
          {"embedding_init", std::string(generator::to_string(embedding_init))},
          {"freeze_embeddings", freeze_embeddings},
          {"conditional_bn", conditional_bn ? nlohmann::json(*conditional_bn) : nlohmann::json("auto")},
          {"epochs", epochs},
          {"iterations", iterations},
          {"batch_size", batch_size},
          {"warmup_epochs", warmup_epochs},
          {"observe_epochs", observe_epochs},
          {"lr_g", lr_g},
          {"adam_betas", {adam_beta1, adam_beta2}},
          {"lr_q", lr_q},
          {"momentum", momentum},
          {"weight_decay", weight_decay},
          {"schedule", schedule.to_json()},
          {"bns_weight", bns_weight},
          {"temperature", temperature},
          {"alpha", alpha},
          {"eval_every", eval_every},
          {"on_nan", on_nan == NanPolicy::Stop ? "stop" : "rollback"},
          {"seed", seed}};
}

nlohmann::json EpochRecord::to_json() const {
  nlohmann::json j{{"epoch", epoch},   {"lr_g", lr_g},       {"lr_q", lr_q},
                   {"loss_g", loss_g}, {"loss_ce", loss_ce}, {"loss_bns", loss_bns},
                   {"loss_q", loss_q}, {"teacher_agreement", teacher_agreement},
                   {"superposed_share", superposed_share},   {"seconds", seconds}};
  if (test) {
    j["test_top1"] = test->top1;
    j["test_top5"] = test->top5;
  }
  return j;
}

EpochRecord EpochRecord::from_json(const nlohmann::json& j) {
  EpochRecord r;
  r.epoch = j.at("epoch").get<int64_t>();
  r.lr_g = j.at("lr_g");
  r.lr_q = j.at("lr_q");
  r.loss_g = j.at("loss_g");
  r.loss_ce = j.at("loss_ce");
  r.loss_bns = j.at("loss_bns");
  r.loss_q = j.at("loss_q");
  r.teacher_agreement = j.at("teacher_agreement");
  r.superposed_share = j.at("superposed_share");
  r.seconds = j.at("seconds");
  if (j.contains("test_top1")) {
    eval::Accuracy a;
    a.top1 = j.at("test_top1");
    a.top5 = j.at("test_top5");
    r.test = a;
  }
  return r;
}

DataFreeTrainer::DataFreeTrainer(models::Classifier teacher, DataFreeOptions options,
                                 c10::Device device)
    : options_(options.effective()), device_(device), teacher_(std::move(teacher)) {
  options_.validate();
  teacher_->eval();
  for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
  quantized_ = models::clone_model(*teacher_);
  for (auto& p : quantized_->parameters()) p.set_requires_grad(true);
  quant::convert(*quantized_, options_.quant);
  // Q's batch norms use P's running statistics; their scale and shift are trained.
  quantized_->eval();
  generator_ = generator::Generator(generator_options(*teacher_, options_));
  if (options_.embedding_init == generator::EmbeddingInit::Extracted) {
    generator_->init_embeddings_from(teacher_->classifier_weight().detach());
  }
  generator_->to(device_);
  generator_->train();
  optimizer_g_ = std::make_unique<torch::optim::Adam>(
      trainable(generator_->parameters()),
      torch::optim::AdamOptions(options_.lr_g).betas({options_.adam_beta1, options_.adam_beta2}));
  optimizer_q_ = std::make_unique<torch::optim::SGD>(
      quantized_->parameters(), torch::optim::SGDOptions(options_.lr_q)
                                    .momentum(options_.momentum)
                                    .weight_decay(options_.weight_decay)
                                    .nesterov(options_.momentum > 0));
}

DataFreeTrainer::~DataFreeTrainer() = default;

void DataFreeTrainer::begin_epoch(int64_t epoch) {
  const double factor = options_.schedule.factor(epoch, options_.epochs) * lr_scale_;
  set_learning_rate(*optimizer_g_, options_.lr_g * factor);
  set_learning_rate(*optimizer_q_, options_.lr_q * factor);
  quant::set_observing(*quantized_, epoch < options_.observe_epochs);
}

IterationLosses DataFreeTrainer::step(int64_t epoch, const PhaseMarker& mark) {
  auto note = [&](const char* phase) {
    if (mark) mark(phase);
  };
  const auto& o = options_;
  const auto spec = teacher_->spec();
  IterationLosses out;
  const auto latents = generator::sample_latents(o.batch_size, spec.num_classes,
                                                 teacher_->feature_dim(), o.superposition, device_);
  out.superposed = latents.superposed();
  const auto images = generator_->forward(latents);
  note("generator forward");
  const auto trace = teacher_->trace(images);
  out.ce = soft_cross_entropy(trace.logits, latents.targets);
  out.bns = bns_loss(trace.batch_norms);
  out.generator = out.ce + o.bns_weight * out.bns;
  note("teacher forward + losses");
  optimizer_g_->zero_grad();
  out.generator.backward();
  note("teacher + generator backward");
  optimizer_g_->step();
  note("generator step");

  const auto x = images.detach();
  const auto teacher_logits = trace.logits.detach();
  out.agreement = agreement(teacher_logits, latents.targets);
  out.quantized_updated = epoch >= o.warmup_epochs;
  if (!out.quantized_updated) {
    // Warm-up: Q only observes activation ranges.
    at::NoGradGuard no_grad;
    quantized_->forward(x);
    note("quantized forward");
    return out;
  }
  const auto logits = quantized_->forward(x);
  out.quantized = kd_loss(logits, teacher_logits, o.temperature, o.alpha) +
                  soft_cross_entropy(logits, latents.targets);
  note("quantized forward + losses");
  optimizer_q_->zero_grad();
  out.quantized.backward();
  note("quantized backward");
  optimizer_q_->step();
  note("quantized step");
  return out;
}

void DataFreeTrainer::check_finite(const at::Tensor& flag, int64_t epoch, int64_t iteration) const {
  if (flag.defined() && flag.item<bool>()) {
    throw NonFiniteLoss(fmt::format(
        "a loss became NaN or infinite in epoch {} (by iteration {}); lower --lr-g / --lr-q, or "
        "pass --on-nan rollback to restart from the last checkpoint with lower learning rates",
        epoch + 1, iteration));
  }
}

EpochRecord DataFreeTrainer::train_epoch(int64_t epoch, double lr_scale) {
  const auto start = std::chrono::steady_clock::now();
  lr_scale_ = lr_scale;
  begin_epoch(epoch);
  EpochRecord record;
  record.epoch = epoch + 1;
  record.lr_g = options_.lr_g * options_.schedule.factor(epoch, options_.epochs) * lr_scale;
  record.lr_q = options_.lr_q * options_.schedule.factor(epoch, options_.epochs) * lr_scale;
  ProgressBar bar(options_.iterations, fmt::format("epoch {}/{}", epoch + 1, options_.epochs));
  Accumulator acc;
  std::string shown;
  for (int64_t it = 0; it < options_.iterations; ++it) {
    acc.add(step(epoch));
    if ((it + 1) % options_.log_every == 0) {
      check_finite(acc.nonfinite, epoch, it + 1);
      shown = acc.summary();
    }
    bar.update(it + 1, shown);
  }
  check_finite(acc.nonfinite, epoch, options_.iterations);
  // The reference fixes the ranges after every epoch's training; the next epoch unfixes them again
  // while epoch < observe_epochs.
  quant::set_observing(*quantized_, false);
  bar.finish(acc.summary());
  record.loss_g = acc.mean(acc.g, acc.iterations);
  record.loss_ce = acc.mean(acc.ce, acc.iterations);
  record.loss_bns = acc.mean(acc.bns, acc.iterations);
  record.loss_q = acc.mean(acc.q, acc.q_updates);
  record.teacher_agreement = 100 * acc.mean(acc.agreement, acc.iterations);
  record.superposed_share = static_cast<double>(acc.superposed) / static_cast<double>(acc.iterations);
  record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return record;
}

DataFreeResult DataFreeTrainer::run(const fs::path& run_dir, bool resume, data::BatchLoader* test,
                                    const nlohmann::json& provenance) {
  const auto start = std::chrono::steady_clock::now();
  const fs::path checkpoint = run_dir / "checkpoint.pt";
  require(resume || !fs::exists(checkpoint),
          "{} already holds a run: pass --resume to continue it, or choose another --out",
          run_dir.string());
  TrainingState state{{{"generator", generator_.ptr().get()}, {"quantized", quantized_.get()}},
                      {{"generator", optimizer_g_.get()}, {"quantized", optimizer_q_.get()}},
                      device_};
  DataFreeResult result;
  double lr_scale = 1.0;
  int rollbacks = 0;
  auto restore = [&] {
    const auto info = load_checkpoint(checkpoint, state);
    lr_scale = info.extra.value("lr_scale", 1.0);
    rollbacks = info.extra.value("rollbacks", 0);
    result.history.clear();
    for (const auto& line : info.extra.value("history", nlohmann::json::array())) {
      result.history.push_back(EpochRecord::from_json(line));
    }
    return info.next_epoch;
  };
  auto save = [&](int64_t next_epoch) {
    nlohmann::json history = nlohmann::json::array();
    for (const auto& r : result.history) history.push_back(r.to_json());
    save_checkpoint(checkpoint, state, next_epoch,
                    {{"lr_scale", lr_scale}, {"rollbacks", rollbacks}, {"history", history}});
  };

  int64_t epoch = 0;
  if (resume && fs::exists(checkpoint)) {
    epoch = restore();
    spdlog::info("resuming {} at epoch {}", run_dir.string(), epoch + 1);
  } else {
    save(0);  // the starting point, for --on-nan rollback
  }
  write_json(run_dir / "config.json", {{"options", options_.to_json()},
                                       {"teacher", teacher_->spec().to_json()},
                                       {"generator", generator_->options().to_json()},
                                       {"device", device_.str()},
                                       {"provenance", provenance}});
  while (epoch < options_.epochs) {
    EpochRecord record;
    try {
      record = train_epoch(epoch, lr_scale);
    } catch (const NonFiniteLoss& e) {
      if (options_.on_nan != NanPolicy::Rollback || rollbacks >= options_.max_rollbacks) throw;
      const int done = rollbacks + 1;
      epoch = restore();
      rollbacks = done;
      lr_scale *= options_.rollback_lr_factor;
      spdlog::warn("{}; rolled back to epoch {} with learning rates x{} (rollback {}/{})", e.what(),
                   epoch + 1, lr_scale, rollbacks, options_.max_rollbacks);
      continue;
    }
    const bool last = epoch + 1 == options_.epochs;
    if (test && ((epoch + 1) % options_.eval_every == 0 || last)) {
      record.test = eval::evaluate_model(*quantized_, *test);
      spdlog::info("epoch {}/{}: quantized top-1 {:.2f}%", epoch + 1, options_.epochs, record.test->top1);
    }
    result.history.push_back(record);
    append_json_line(run_dir / "metrics.jsonl", record.to_json());
    ++epoch;
    save(epoch);
  }
  result.final_epoch = result.history.back();
  for (const auto& r : result.history) {
    if (r.test && (!result.best_epoch || r.test->top1 > result.best_epoch->test->top1)) {
      result.best_epoch = r;
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  nlohmann::json summary{{"final_epoch", result.final_epoch->to_json()},
                         {"seconds_this_session", result.seconds}};
  if (result.best_epoch) {
    summary["best_epoch_selected_on_test_set"] = result.best_epoch->to_json();
  }
  write_json(run_dir / "result.json", summary);
  return result;
}

}  // namespace qimera::methods
