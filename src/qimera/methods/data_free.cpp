#include "qimera/methods/data_free.h"

#include "qimera/core/error.h"
#include "qimera/deploy/quantized_model.h"
#include "qimera/methods/losses.h"
#include "qimera/models/memory_format.h"
#include "qimera/models/no_parameter_gradients.h"
#include "qimera/models/zoo.h"

#include <ATen/ATen.h>
#include <spdlog/spdlog.h>
#include <torch/optim/adam.h>
#include <torch/optim/sgd.h>

namespace qimera::methods {
namespace {

std::vector<at::Tensor> trainable(const std::vector<at::Tensor>& params) {
  std::vector<at::Tensor> out;
  for (const auto& p : params) {
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

// Losses, batch-norm statistics and Q see float32 whatever precision produced a tensor (the cast
// is differentiable and free for float32 tensors).
at::Tensor in_float(const at::Tensor& t) { return t.defined() ? t.to(at::kFloat) : t; }

void note(const PhaseMarker& mark, const char* phase) {
  if (mark) mark(phase);
}

}  // namespace

DataFreeTrainer::DataFreeTrainer(models::Classifier teacher, DataFreeSetup setup,
                                 const SourceFactory& make_source, Objective generator_objective,
                                 Objective student_objective, c10::Device device,
                                 models::Classifier student)
    : setup_(std::move(setup)),
      device_(device),
      teacher_(std::move(teacher)),
      generator_objective_(std::move(generator_objective)),
      student_objective_(std::move(student_objective)) {
  setup_.quant.validate();
  setup_.schedule.validate(setup_.epochs);
  setup_.student.validate();
  setup_.generator.validate();
  require(setup_.plan.student_steps >= 1, "a data-free iteration needs at least one Q step");
  require(!setup_.real_images.defined() ||
              (setup_.real_targets.defined() && setup_.real_per_batch >= 1 &&
               setup_.real_targets.size(0) == setup_.real_images.size(0)),
          "real images need as many targets and at least one per batch");
  require(!student_objective_.empty(), "a data-free method needs an objective for Q");
  // Every observer kind starts empty (ranges [0, 0]): only warm-up epochs or a Q that comes
  // calibrated (ZeroQ) or --act-ranges-from fill it. Calibration kinds were once exempt here and
  // trained on zero ranges.
  require(setup_.act_ranges_from.empty() || setup_.schedule.observe_epochs == 0,
          "--act-ranges-from {} fixes the activation ranges for the whole run, but this method's "
          "schedule observes them for {} epochs: pass --observe-epochs 0 (and not --zaq-public-code)",
          setup_.act_ranges_from, setup_.schedule.observe_epochs);
  require(setup_.schedule.observe_epochs >= 1 || student != nullptr || !setup_.act_ranges_from.empty(),
          "--observe-epochs 0 would leave the activation ranges empty (every observer kind, {} "
          "included, fills them only during the observe epochs)",
          quant::to_string(setup_.quant.observer.kind));
  teacher_->eval();
  for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
  if (student) {
    student_ = std::move(student);
  } else {
    student_ = models::clone_model(*teacher_);
    for (auto& p : student_->parameters()) p.set_requires_grad(true);
    quant::convert(*student_, setup_.quant);
  }
  if (!setup_.act_ranges_from.empty()) {
    const auto taken = deploy::adopt_act_ranges(
        *student_, deploy::read_quantized_manifest(setup_.act_ranges_from), setup_.act_ranges_from);
    spdlog::info("activation ranges: {} taken from {}, fixed for the whole run", taken.size(),
                 setup_.act_ranges_from);
  }
  // Q's batch norms use P's running statistics; their scale and shift are trained.
  student_->eval();
  source_ = make_source(*teacher_);
  require(source_ != nullptr, "the method built no image source");
  if (setup_.channels_last) {
    models::use_channels_last(*teacher_);
    models::use_channels_last(*student_);
  }
  if (auto g = source_->generator()) {
    require(!generator_objective_.empty(), "a generator source needs an objective for G");
    g->to(device_);
    if (setup_.channels_last) models::use_channels_last(*g);
    g->train();
    optimizer_g_ = std::make_unique<torch::optim::Adam>(
        trainable(g->parameters()), torch::optim::AdamOptions(setup_.generator.lr_g)
                                        .betas({setup_.generator.adam_beta1, setup_.generator.adam_beta2}));
  }
  require(!(generator_objective_.needs() | student_objective_.needs()).targets ||
              source_->has_targets(),
          "this method's losses need labels, and its image source has none");
  const auto& s = setup_.student;
  optimizer_q_ = std::make_unique<torch::optim::SGD>(
      student_->parameters(),
      torch::optim::SGDOptions(s.lr_q).momentum(s.momentum).weight_decay(s.weight_decay).nesterov(s.nesterov));
}

DataFreeTrainer::~DataFreeTrainer() = default;

std::vector<std::pair<std::string, double>> DataFreeTrainer::begin_epoch(int64_t epoch,
                                                                         double lr_scale) {
  const double factor = setup_.schedule.lr_schedule.factor(epoch, setup_.epochs) * lr_scale;
  std::vector<std::pair<std::string, double>> rates;
  if (optimizer_g_) {
    set_learning_rate(*optimizer_g_, setup_.generator.lr_g * factor);
    rates.emplace_back("lr_g", setup_.generator.lr_g * factor);
  }
  set_learning_rate(*optimizer_q_, setup_.student.lr_q * factor);
  rates.emplace_back("lr_q", setup_.student.lr_q * factor);
  quant::set_observing(*student_, epoch < setup_.schedule.observe_epochs);
  student_->train(setup_.plan.student_bn_train);
  // A pure function of the epoch, so a resumed run takes the same real images.
  real_cursor_ = epoch * setup_.schedule.iterations * setup_.real_per_batch;
  return rates;
}

void DataFreeTrainer::end_epoch(int64_t epoch) {
  // The reference fixes the ranges after every epoch's training; the next epoch unfixes them again
  // while epoch < observe_epochs.
  quant::set_observing(*student_, false);
  student_->eval();
}

nlohmann::json DataFreeTrainer::parts() const {
  return {{"source", source_->to_json()},
          {"generator_objective", generator_objective_.to_json()},
          {"student_objective", student_objective_.to_json()},
          {"order", setup_.plan.order == IterationPlan::Order::GeneratorFirst ? "generator first" : "student first"},
          {"student_steps", setup_.plan.student_steps},
          {"real_images", setup_.real_images.defined() ? setup_.real_images.size(0) : 0},
          {"real_per_batch", setup_.real_per_batch}};
}

TrainingState DataFreeTrainer::state() {
  TrainingState state;
  state.device = device_;
  if (auto g = source_->generator()) {
    state.modules.emplace_back("generator", g.ptr().get());
    state.optimizers.emplace_back("generator", optimizer_g_.get());
  }
  state.modules.emplace_back("quantized", student_.get());
  state.optimizers.emplace_back("quantized", optimizer_q_.get());
  source_->add_state(state);
  return state;
}

models::ForwardTrace DataFreeTrainer::teacher_trace(const at::Tensor& images, const Needs& needs) {
  models::ForwardTrace trace;
  {
    models::AutocastScope reduced(setup_.teacher_precision, device_.type());
    trace = teacher_->trace(images, {needs.teacher_batch_norms, needs.teacher_stages});
  }
  trace.logits = in_float(trace.logits);
  for (auto& bn : trace.batch_norms) bn.input = in_float(bn.input);
  for (auto& stage : trace.stages) stage = in_float(stage);
  return trace;
}

TrainingBatch DataFreeTrainer::draw(int64_t n, bool for_generator) {
  TrainingBatch batch;
  {
    models::AutocastScope reduced(setup_.generator_precision, device_.type());
    batch = source_->draw(n, for_generator);
  }
  batch.images = in_float(batch.images);
  batch.generator_images = in_float(batch.generator_images);
  batch.targets = in_float(batch.targets);
  batch.generator_targets = in_float(batch.generator_targets);
  return batch;
}

std::pair<at::Tensor, at::Tensor> DataFreeTrainer::next_real() {
  const int64_t n = setup_.real_images.size(0);
  auto index = at::arange(real_cursor_, real_cursor_ + setup_.real_per_batch, at::kLong).remainder(n);
  real_cursor_ += setup_.real_per_batch;
  index = index.to(setup_.real_images.device());
  return {setup_.real_images.index_select(0, index), setup_.real_targets.index_select(0, index)};
}

void DataFreeTrainer::iteration(int64_t epoch, MetricSums& metrics, const PhaseMarker& mark) {
  const int64_t n = setup_.schedule.batch_size;
  const bool has_generator = static_cast<bool>(source_->generator());
  if (setup_.plan.order == IterationPlan::Order::StudentFirst) {
    for (int64_t s = 0; s < setup_.plan.student_steps; ++s) {
      student_step(draw(n, false), epoch, at::Tensor(), metrics, mark);
    }
    if (has_generator) {
      const auto batch = draw(n, true);
      note(mark, "generator forward");
      metrics.add("superposed_share", batch.superposed ? 1.0 : 0.0);
      generator_step(batch, metrics, mark, nullptr);
    }
    return;
  }
  const auto batch = draw(n, has_generator);
  note(mark, "generator forward");
  metrics.add("superposed_share", batch.superposed ? 1.0 : 0.0);
  at::Tensor teacher_logits;
  if (has_generator) generator_step(batch, metrics, mark, &teacher_logits);
  student_step(batch, epoch, teacher_logits, metrics, mark);
  for (int64_t s = 1; s < setup_.plan.student_steps; ++s) {
    student_step(draw(n, false), epoch, at::Tensor(), metrics, mark);
  }
}

void DataFreeTrainer::generator_step(const TrainingBatch& batch, MetricSums& metrics,
                                     const PhaseMarker& mark, at::Tensor* teacher_logits) {
  const auto needs = generator_objective_.needs();
  BatchView view;
  view.images = batch.images_for_generator();
  view.targets = batch.targets_for_generator();
  view.teacher = teacher_trace(view.images, needs);
  std::optional<models::NoParameterGradients> frozen;
  if (needs.student) {
    frozen.emplace(*student_);
    if (needs.student_stages) {
      view.student = student_->trace(view.images, {false, true});
    } else {
      view.student.logits = student_->forward(view.images);
    }
  }
  const auto loss = generator_objective_.loss(view, metrics);
  note(mark, "teacher forward + losses");
  optimizer_g_->zero_grad();
  loss.backward();
  frozen.reset();
  note(mark, "teacher + generator backward");
  optimizer_g_->step();
  note(mark, "generator step");
  const auto logits = view.teacher.logits.detach();
  if (view.targets.defined()) metrics.add("teacher_agreement", 100 * agreement(logits, view.targets));
  // Q learns on the same images when G's objective saw them (not when a mixing stage hid the mix).
  if (teacher_logits && !batch.generator_images.defined()) *teacher_logits = logits;
}

void DataFreeTrainer::student_step(const TrainingBatch& batch, int64_t epoch,
                                   at::Tensor teacher_logits, MetricSums& metrics,
                                   const PhaseMarker& mark) {
  const auto x = batch.images.detach();
  if (epoch < setup_.schedule.warmup_epochs) {
    // Warm-up: Q only observes activation ranges.
    at::NoGradGuard no_grad;
    student_->forward(x);
    note(mark, "quantized forward");
    return;
  }
  const auto needs = student_objective_.needs();
  BatchView view;
  view.images = x;
  view.targets = batch.targets;
  if (setup_.real_images.defined()) {
    const auto [images, targets] = next_real();
    view.images = at::cat({x, images});
    view.targets = at::cat({batch.targets, targets});
    if (teacher_logits.defined()) {
      at::NoGradGuard no_grad;
      teacher_logits = at::cat({teacher_logits, teacher_trace(images, {}).logits});
    }
  }
  if (!teacher_logits.defined() || needs.teacher_stages) {
    at::NoGradGuard no_grad;
    view.teacher = teacher_trace(view.images, {false, false, needs.teacher_stages, false, false});
  } else {
    view.teacher.logits = teacher_logits;
  }
  if (needs.student_stages) {
    view.student = student_->trace(view.images, {false, true});
  } else {
    view.student.logits = student_->forward(view.images);
  }
  const auto loss = student_objective_.loss(view, metrics);
  note(mark, "quantized forward + losses");
  optimizer_q_->zero_grad();
  loss.backward();
  note(mark, "quantized backward");
  optimizer_q_->step();
  note(mark, "quantized step");
  // Q's top-1 against P's on the images Q learns from: falls to chance when Q collapses, which the
  // run loop catches without test data.
  metrics.add("q_agreement", 100 * agreement(view.student.logits.detach(), view.teacher.logits));
}

}  // namespace qimera::methods
