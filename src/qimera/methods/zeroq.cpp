#include "qimera/methods/zeroq.h"

#include "qimera/core/error.h"
#include "qimera/core/progress.h"
#include "qimera/eval/evaluate.h"
#include "qimera/methods/schedule.h"
#include "qimera/models/no_parameter_gradients.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/util/ScopeExit.h>
#include <torch/optim/adam.h>

#include <limits>

namespace qimera::methods {
namespace {

constexpr double kStdEps = 1e-6;  // ZeroQ's eps, in the targets and in the statistics

// ||target - statistic||^2 summed over batch and channels, divided by the batch (ZeroQ's own_loss).
at::Tensor distance(const at::Tensor& target, const at::Tensor& statistic) {
  return (target - statistic).square().sum() / static_cast<double>(statistic.size(0));
}

// Mean and std per sample and channel over the positions ([B, C] each), or per channel over the
// batch ([1, C] each).
std::pair<at::Tensor, at::Tensor> statistics(const at::Tensor& x, bool batch) {
  if (batch) {
    const auto flat = x.transpose(0, 1).reshape({x.size(1), -1});
    return {flat.mean(1).unsqueeze(0), (flat.var(1, /*unbiased=*/true) + kStdEps).sqrt().unsqueeze(0)};
  }
  const auto flat = x.reshape({x.size(0), x.size(1), -1});
  return {flat.mean(2), (flat.var(2, /*unbiased=*/true) + kStdEps).sqrt()};
}

}  // namespace

void ZeroqOptions::describe(OptionVisitor& v) {
  v.option({"zeroq_iterations", "ZeroQ: Adam steps per distilled batch"}, iterations);
  v.option({"zeroq_lr", "ZeroQ: Adam learning rate on the images"}, lr);
  v.option({"zeroq_batch_size", "ZeroQ: images per distilled batch"}, batch_size);
  v.option({"zeroq_batches", "ZeroQ: distilled batches (each optimized on its own)"}, batches);
  v.option({"zeroq_plateau_patience", "ZeroQ: steps without improvement before the rate drops"},
           plateau_patience);
  v.option({"zeroq_batch_statistics",
            "ZeroQ: match batch statistics (as GDFQ) instead of ZeroQ's per-sample ones"},
           batch_statistics);
}

void ZeroqOptions::validate() const {
  require(iterations >= 1, "--zeroq-iterations must be at least 1, got {}", iterations);
  require(lr > 0, "--zeroq-lr must be positive, got {}", lr);
  require(batch_size >= 2 && batch_size <= 65536, "--zeroq-batch-size must be in [2, 65536], got {}",
          batch_size);
  require(batches >= 1 && batches <= 10000, "--zeroq-batches must be in [1, 10000], got {}", batches);
  require(plateau_patience >= 0, "--zeroq-plateau-patience must not be negative");
}

at::Tensor zeroq_start_images(const models::ModelSpec& spec, int64_t n, c10::Device device) {
  const auto pixels = at::randint(0, 255, {n, spec.in_channels, spec.image_size, spec.image_size},
                                  at::TensorOptions().dtype(at::kFloat));
  return ((pixels - 127.5) / 5418.75).to(device);
}

at::Tensor zeroq_loss(const models::ForwardTrace& trace, const at::Tensor& images, bool batch_statistics) {
  require(!trace.batch_norms.empty(), "ZeroQ needs a model with batch-norm layers");
  at::Tensor mean_loss, std_loss;
  auto add = [&](const at::Tensor& x, const at::Tensor& target_mean, const at::Tensor& target_std) {
    const auto [mean, std] = statistics(x, batch_statistics);
    const auto m = distance(target_mean, mean), s = distance(target_std, std);
    mean_loss = mean_loss.defined() ? mean_loss + m : m;
    std_loss = std_loss.defined() ? std_loss + s : s;
  };
  for (const auto& bn : trace.batch_norms) {
    add(bn.input, bn.layer->running_mean, (bn.layer->running_var + kStdEps).sqrt());
  }
  const int64_t c = images.size(1);
  add(images, at::zeros({c}, images.options()), at::ones({c}, images.options()));
  return mean_loss + std_loss;
}

ReduceLrOnPlateau::ReduceLrOnPlateau(torch::optim::Optimizer& optimizer, double factor,
                                     int64_t patience, double min_lr)
    : optimizer_(optimizer),
      factor_(factor),
      min_lr_(min_lr),
      best_(std::numeric_limits<double>::infinity()),
      patience_(patience) {
  auto& options = optimizer_.param_groups().front().options();
  lr_ = dynamic_cast<torch::optim::AdamOptions&>(options).lr();
}

void ReduceLrOnPlateau::step(double metric) {
  constexpr double kThreshold = 1e-4, kEps = 1e-8;
  if (metric < best_ * (1 - kThreshold)) {
    best_ = metric;
    bad_ = 0;
  } else {
    ++bad_;
  }
  if (bad_ > patience_) {
    const double lowered = std::max(lr_ * factor_, min_lr_);
    if (lr_ - lowered > kEps) {
      lr_ = lowered;
      set_learning_rate(optimizer_, lr_);
    }
    bad_ = 0;
  }
}

at::Tensor distill_images(models::ClassifierImpl& teacher, const ZeroqOptions& o, c10::Device device,
                          const at::Tensor& targets) {
  o.validate();
  require(!targets.defined() || (targets.dim() == 1 && targets.size(0) == o.batches * o.batch_size &&
                                 targets.scalar_type() == at::kLong),
          "distillation targets: expected int64 [{}] class indices", o.batches * o.batch_size);
  teacher.eval();
  const auto targets_here = targets.defined() ? targets.to(device) : targets;
  std::vector<at::Tensor> batches;
  ProgressBar bar(o.batches * o.iterations, "zeroq distillation");
  for (int64_t b = 0; b < o.batches; ++b) {
    auto images = zeroq_start_images(teacher.spec(), o.batch_size, device).requires_grad_(true);
    torch::optim::Adam adam(std::vector<at::Tensor>{images}, torch::optim::AdamOptions(o.lr));
    ReduceLrOnPlateau plateau(adam, o.plateau_factor, o.plateau_patience, o.min_lr);
    double last = 0;
    for (int64_t it = 0; it < o.iterations; ++it) {
      adam.zero_grad();
      const auto trace = teacher.trace(images);
      auto loss = zeroq_loss(trace, images, o.batch_statistics);
      if (targets_here.defined()) {
        loss = loss + at::cross_entropy_loss(trace.logits,
                                             targets_here.slice(0, b * o.batch_size, (b + 1) * o.batch_size));
      }
      loss.backward();
      adam.step();
      last = loss.item<double>();  // the scheduler reads it, as ZeroQ's does every step
      require(std::isfinite(last), "ZeroQ's distillation loss became {} in batch {} step {}", last,
              b + 1, it + 1);
      plateau.step(last);
      bar.update(b * o.iterations + it + 1, fmt::format("loss {:.4g} lr {:.2g}", last, plateau.lr()));
    }
    batches.push_back(images.detach());
  }
  bar.finish();
  return at::cat(batches, 0);
}

ZeroqOptions probe_options() {
  ZeroqOptions o;
  o.batches = 2;
  return o;
}

Probe distill_probe(models::ClassifierImpl& teacher, const ZeroqOptions& o, bool class_balanced,
                    c10::Device device) {
  Probe probe;
  // Balanced: every class gets as many images, so the worst class is measured too.
  if (class_balanced) {
    probe.targets = at::arange(o.batches * o.batch_size, at::kLong).remainder(teacher.spec().num_classes);
  }
  probe.images = distill_images(teacher, o, device, probe.targets);
  return probe;
}

eval::ProbeSet run_probe(models::ClassifierImpl& teacher, const ZeroqOptions& options, uint64_t seed,
                         c10::Device device) {
  auto generator = at::detail::getDefaultCPUGenerator();
  at::Tensor run_state;
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    run_state = generator.get_state();
    generator.set_current_seed(seed);
  }
  const auto restore_stream = c10::make_scope_exit([&] {
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(run_state);
  });
  const models::NoParameterGradients frozen(teacher);
  return eval::in_eval_mode(teacher, [&] {
    const auto probe = distill_probe(teacher, options, /*class_balanced=*/true, device);
    eval::ProbeSet set;
    set.images = probe.images;
    set.reference = eval::logits_of([&](const at::Tensor& x) { return teacher.forward(x); }, probe.images,
                                    set.batch_size);
    return set;
  });
}

}  // namespace qimera::methods
